/* fuzz_npy.c - libFuzzer harness for nb_npy_parse (the .npy reader, src/data/npy.c).
 * Build and run: scripts/fuzz.sh SECONDS (or `make fuzz`). Seeds: fuzz/corpus/npy/. */
#include <stddef.h>
#include <stdint.h>

#include "nabla/npy.h"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_clear_error();
    nb_tensor *t = nb_npy_parse(data, size);
    if (!t) {
        fuzz_check_error();
        return 0;
    }
    fuzz_sum_tensor(t);
    nb_tensor_free(t);
    return 0;
}
