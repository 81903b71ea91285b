/* fuzz_csv.c - libFuzzer harness for nb_dataset_parse_csv (src/data/csv.c).
 *
 * The first input byte picks the options, the rest is the CSV text:
 *   bit 0: label column 0 (set) or -1, the last one (clear)
 *   bits 1-2: the header mode (0 no, 1 yes, 2 or 3 auto)
 * so one corpus file exercises one combination and the fuzzer reaches all six.
 * Build and run: scripts/fuzz.sh SECONDS (or `make fuzz`). Seeds: fuzz/corpus/csv/. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/dataset.h"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int label_col = (data[0] & 1) ? 0 : -1;
    unsigned hm = (data[0] >> 1) & 3;
    nb_csv_header header = hm == 0   ? NB_CSV_HEADER_NO
                           : hm == 1 ? NB_CSV_HEADER_YES
                                     : NB_CSV_HEADER_AUTO;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    nb_dataset ds;
    nb_clear_error();
    nb_status st = nb_dataset_parse_csv(text, len, label_col, header, &ds);
    if (st != NB_OK) {
        fuzz_check_error();
        if (ds.X || ds.y)
            fuzz_fail("csv: a failed parse left tensors in the data set");
        return 0;
    }
    /* The documented result: X f32 [N, D], y i32 [N], N >= 1, D >= 1, 0 <= y < n_classes. */
    if (!ds.X || !ds.y || ds.X->dtype != NB_F32 || ds.X->ndim != 2 || ds.y->dtype != NB_I32 ||
        ds.y->ndim != 1 || ds.X->shape[0] != ds.y->shape[0] || ds.X->shape[0] < 1 ||
        ds.X->shape[1] < 1)
        fuzz_fail("csv: data set tensors of the wrong dtype or shape");
    if (ds.n_classes < 1 || ds.n_classes > NB_DATASET_MAX_CLASSES)
        fuzz_fail("csv: n_classes out of range");
    fuzz_sum_tensor(ds.X);
    fuzz_sum_tensor(ds.y);
    const int32_t *y = ds.y->data;
    for (int64_t i = 0; i < ds.y->numel; i++)
        if (y[i] < 0 || y[i] >= ds.n_classes)
            fuzz_fail("csv: a label outside [0, n_classes)");
    nb_dataset_free(&ds);
    return 0;
}
