/* fuzz_idx.c - libFuzzer harness for nb_idx_parse (IDX, plain or gzip, src/data/idx.c).
 * Build and run: scripts/fuzz.sh SECONDS (or `make fuzz`). Seeds: fuzz/corpus/idx/. */
#include <stddef.h>
#include <stdint.h>

#include "nabla/dataset.h"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_clear_error();
    nb_tensor *t = nb_idx_parse(data, size);
    if (!t) {
        fuzz_check_error();
        return 0;
    }
    if (t->ndim < 1 || t->ndim > NB_MAX_DIMS)
        fuzz_fail("IDX tensor with 0 or more than 4 dimensions");
    if (t->dtype != NB_U8 && t->dtype != NB_I32 && t->dtype != NB_F32 && t->dtype != NB_F64)
        fuzz_fail("IDX tensor of a dtype the format cannot give");
    fuzz_sum_tensor(t);
    nb_tensor_free(t);
    return 0;
}
