/* fuzz_image.c - libFuzzer harness for nb_image_parse (src/data/image.c): PNG through libpng's
 * simplified API, PGM P5/P2 parsed by hand. The input is the file's bytes.
 * On success the result must be u8 [H, W] within the documented limits; on failure a message.
 * Build and run: scripts/fuzz.sh SECONDS image (or `make fuzz`). Seeds: fuzz/corpus/image/. */
#include <stddef.h>
#include <stdint.h>

#include "nabla/image.h"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_tensor *t = NULL;
    nb_clear_error();
    nb_status st = nb_image_parse(data, size, &t);
    if (st != NB_OK) {
        fuzz_check_error();
        if (t)
            fuzz_fail("image: a failed parse returned a tensor");
        return 0;
    }
    if (!t || t->dtype != NB_U8 || t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1 ||
        t->shape[0] > NB_IMAGE_MAX_SIDE || t->shape[1] > NB_IMAGE_MAX_SIDE ||
        t->numel > NB_IMAGE_MAX_PIXELS)
        fuzz_fail("image: a result of the wrong dtype or shape");
    fuzz_sum_tensor(t);
    nb_tensor_free(t);
    return 0;
}
