/* fuzz_safetensors.c - libFuzzer harness for nb_safetensors_parse (src/io/safetensors.c).
 * On success it walks everything the result exposes: every tensor by name (each listed name must
 * be found again by nb_safetensors_get) and every metadata pair.
 * Build and run: scripts/fuzz.sh SECONDS (or `make fuzz`). Seeds: fuzz/corpus/safetensors/. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nabla/safetensors.h"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_clear_error();
    nb_safetensors *st = nb_safetensors_parse(data, size);
    if (!st) {
        fuzz_check_error();
        return 0;
    }
    double sum = 0.0;
    int n = nb_safetensors_count(st);
    if (n < 0)
        fuzz_fail("safetensors: negative tensor count");
    for (int i = 0; i < n; i++) {
        const char *name = nb_safetensors_name(st, i);
        if (!name)
            fuzz_fail("safetensors: tensor i < count has no name");
        const nb_tensor *t = nb_safetensors_get(st, name);
        if (!t)
            fuzz_fail("safetensors: a listed name is not found by nb_safetensors_get");
        sum += fuzz_sum_tensor(t);
    }
    if (nb_safetensors_name(st, n) != NULL)
        fuzz_fail("safetensors: a name past the count");
    int m = nb_safetensors_meta_count(st);
    for (int i = 0; i < m; i++) {
        const char *key = nb_safetensors_meta_key(st, i);
        if (!key)
            fuzz_fail("safetensors: metadata key i < count is NULL");
        const char *value = nb_safetensors_meta(st, key);
        if (!value)
            fuzz_fail("safetensors: a listed metadata key has no value");
        sum += (double)(strlen(key) + strlen(value));
    }
    fuzz_sink = sum;
    nb_safetensors_free(st);
    return 0;
}
