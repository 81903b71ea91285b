/* cmd_export.c - `nabla export`: a trained model's weights alone, named for PyTorch's
 * nn.Sequential, as safetensors (--format torch) or a NumPy .npz (--format npz).
 *
 * nabla's MLP is Linear, activation, Linear, ..., Linear (dropout only while training). As an
 * nn.Sequential that is Linear modules at the even indices 0, 2, 4, ... with the activation
 * modules between them, so its state_dict names are 0.weight [out, in], 0.bias [out], 2.weight,
 * ... . What the inputs need before the first layer is recorded beside the weights:
 *   torch: safetensors metadata (strings) input_scale, input_shift, and for a standardised model
 *          input_mean and input_std as JSON lists of f32 values (%.9g, exact);
 *   npz:   arrays input.scale, input.shift (f64, shape ()) and input.mean, input.std (f32 [D]).
 * A raw row x is fed as ((x * input_scale + input_shift) - input_mean) / input_std.
 *
 * The .npz is a zip archive of .npy files (NumPy format 1.0, little-endian, C order), stored
 * uncompressed with zlib's CRC-32, written by hand: local headers, data, central directory, end
 * record (no zip64: every member and the whole archive must stay below 4 GiB). Both formats go
 * through the one output writer (tensor/fileio.h: atomic replace, "-", devices, FIFOs).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cli.h"
#include "tensor/fileio.h"
#include "nabla.h"

#define EXPORT_MAX_MEMBERS (2 * NB_MLP_MAX_LAYERS + 4)

/* One .npy member of the archive: its name and bytes (header + data). */
typedef struct npz_member {
    char name[48];
    unsigned char *bytes;
    size_t len;
    uint32_t crc;
} npz_member;

typedef struct npz {
    npz_member m[EXPORT_MAX_MEMBERS];
    int n;
} npz;

/* The .npy of x (f32 or f64, 0 to 2 dims) in memory: "\x93NUMPY" 1.0, a header dict padded with
 * spaces and ended by '\n' so the data starts at a multiple of 64, then the data little-endian. */
static nb_status npy_bytes(const nb_tensor *x, npz_member *m)
{
    char dict[160];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f%d', 'fortran_order': False, 'shape': (",
                     x->dtype == NB_F64 ? 8 : 4);
    for (int i = 0; i < x->ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%" PRId64, i ? ", " : "", x->shape[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", x->ndim == 1 ? "," : "");
    size_t head = 10 + (size_t)n + 1, pad = (64 - head % 64) % 64, esz = nb_dtype_size(x->dtype);
    size_t hlen = (size_t)n + pad + 1, data = (size_t)x->numel * esz;
    m->len = 10 + hlen + data;
    if (!(m->bytes = malloc(m->len)))
        return nb_error(NB_ERR_NOMEM, "out of memory for %zu bytes of %s", m->len, m->name);
    memcpy(m->bytes, "\x93NUMPY\x01\x00", 8);
    m->bytes[8] = (unsigned char)(hlen & 0xff);
    m->bytes[9] = (unsigned char)(hlen >> 8);
    memcpy(m->bytes + 10, dict, (size_t)n);
    memset(m->bytes + 10 + n, ' ', pad);
    m->bytes[10 + hlen - 1] = '\n';
    memcpy(m->bytes + 10 + hlen, x->data, data);
    if (!nb_host_little_endian())
        nb_swap_elements(m->bytes + 10 + hlen, (size_t)x->numel, esz);
    m->crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), m->bytes, (uInt)m->len);
    return NB_OK;
}

static nb_status npz_add(npz *z, const char *name, const nb_tensor *x)
{
    npz_member *m = &z->m[z->n];
    snprintf(m->name, sizeof m->name, "%s.npy", name);
    if ((uint64_t)x->numel * nb_dtype_size(x->dtype) > 0xffff0000u)
        return nb_error(NB_ERR_RANGE, "%s is over 4 GiB, more than a zip without zip64 holds",
                        name);
    nb_status st = npy_bytes(x, m);
    if (st == NB_OK)
        z->n++;
    return st;
}

static void npz_free(npz *z)
{
    for (int i = 0; i < z->n; i++)
        free(z->m[i].bytes);
    z->n = 0;
}

static bool put16(FILE *f, unsigned v)
{
    return fputc((int)(v & 0xff), f) != EOF && fputc((int)(v >> 8 & 0xff), f) != EOF;
}

static bool put32(FILE *f, uint32_t v)
{
    return put16(f, v & 0xffff) && put16(f, v >> 16);
}

/* The fields a local header and a central directory entry share, from "version needed" on:
 * version 20, no flags, method 0 (stored), time 00:00, date 1980-01-01, CRC, sizes, name length
 * and no extra field. */
static bool put_common(FILE *f, const npz_member *m)
{
    return put16(f, 20) && put16(f, 0) && put16(f, 0) && put16(f, 0) && put16(f, 0x21) &&
           put32(f, m->crc) && put32(f, (uint32_t)m->len) && put32(f, (uint32_t)m->len) &&
           put16(f, (unsigned)strlen(m->name)) && put16(f, 0);
}

static bool write_npz(FILE *f, void *ctx)
{
    const npz *z = ctx;
    uint32_t off[EXPORT_MAX_MEMBERS], at = 0;
    for (int i = 0; i < z->n; i++) {
        const npz_member *m = &z->m[i];
        off[i] = at;
        size_t nl = strlen(m->name);
        if (!put32(f, 0x04034b50) || !put_common(f, m) || fwrite(m->name, 1, nl, f) != nl ||
            fwrite(m->bytes, 1, m->len, f) != m->len)
            return false;
        at += (uint32_t)(30 + nl + m->len);
    }
    uint32_t cd = at;
    for (int i = 0; i < z->n; i++) {
        const npz_member *m = &z->m[i];
        size_t nl = strlen(m->name);
        /* made by 2.0; after the common part: comment length, disk 0, internal and external
         * attributes 0, the local header's offset */
        if (!put32(f, 0x02014b50) || !put16(f, 20) || !put_common(f, m) || !put16(f, 0) ||
            !put16(f, 0) || !put16(f, 0) || !put32(f, 0) || !put32(f, off[i]) ||
            fwrite(m->name, 1, nl, f) != nl)
            return false;
        at += (uint32_t)(46 + nl);
    }
    return put32(f, 0x06054b50) && put16(f, 0) && put16(f, 0) && put16(f, (unsigned)z->n) &&
           put16(f, (unsigned)z->n) && put32(f, at - cd) && put32(f, cd) && put16(f, 0);
}

/* The Sequential name of parameter i (weight/bias of Linear layer i / 2, at index 2 * layer). */
static void seq_name(int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "%d.%s", 2 * (i / 2), i % 2 ? "bias" : "weight");
}

static int export_npz(const nb_mlp *m, const nb_model_info *info, const char *out)
{
    npz z = {.n = 0};
    nb_status st = NB_OK;
    char name[32];
    for (int i = 0; i < 2 * m->n_layers && st == NB_OK; i++) {
        seq_name(i, name, sizeof name);
        st = npz_add(&z, name, i % 2 ? m->bias[i / 2] : m->weight[i / 2]);
    }
    nb_tensor *scale = nb_tensor_zeros(NB_F64, 0, NULL), *shift = nb_tensor_zeros(NB_F64, 0, NULL);
    if (st == NB_OK && (!scale || !shift))
        st = nb_last_status();
    if (st == NB_OK) {
        *(double *)scale->data = info->input_scale;
        *(double *)shift->data = info->input_shift;
        if ((st = npz_add(&z, "input.scale", scale)) == NB_OK)
            st = npz_add(&z, "input.shift", shift);
    }
    if (st == NB_OK && info->input_mean &&
        (st = npz_add(&z, "input.mean", info->input_mean)) == NB_OK)
        st = npz_add(&z, "input.std", info->input_std);
    if (st == NB_OK)
        st = nb_write_atomically(out, "--out", write_npz, &z);
    nb_tensor_free(scale);
    nb_tensor_free(shift);
    npz_free(&z);
    if (st != NB_OK) {
        fprintf(stderr, "nabla export: %s\n", nb_last_error());
        return 1;
    }
    return 0;
}

/* A f32 [D] tensor as a JSON list "[v0, v1, ...]" with %.9g (each f32 read back exactly);
 * malloc'd, NULL when out of memory. */
static char *json_list(const nb_tensor *t)
{
    size_t cap = 2 + 18 * (size_t)t->numel + 1, n = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[n++] = '[';
    for (int64_t i = 0; i < t->numel; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s%.9g", i ? ", " : "",
                              (double)((const float *)t->data)[i]);
    snprintf(s + n, cap - n, "]");
    return s;
}

static int export_torch(const nb_mlp *m, const nb_model_info *info, const char *out)
{
    nb_named_tensor t[2 * NB_MLP_MAX_LAYERS];
    char names[2 * NB_MLP_MAX_LAYERS][32], sizes[512] = "", num[2][32];
    for (int i = 0; i < 2 * m->n_layers; i++) {
        seq_name(i, names[i], sizeof names[i]);
        t[i] = (nb_named_tensor){names[i], i % 2 ? m->bias[i / 2] : m->weight[i / 2]};
    }
    for (int i = 0; i <= m->n_layers; i++)
        snprintf(sizes + strlen(sizes), sizeof sizes - strlen(sizes), "%s%" PRId64, i ? "," : "",
                 m->sizes[i]);
    snprintf(num[0], sizeof num[0], "%.17g", info->input_scale);
    snprintf(num[1], sizeof num[1], "%.17g", info->input_shift);
    char *mean = info->input_mean ? json_list(info->input_mean) : NULL;
    char *std = info->input_std ? json_list(info->input_std) : NULL;
    const char *meta[] = {"format",
                          "pt",
                          "sizes",
                          sizes,
                          "activation",
                          nb_activation_name(m->act),
                          "input_scale",
                          num[0],
                          "input_shift",
                          num[1],
                          mean ? "input_mean" : NULL,
                          mean,
                          "input_std",
                          std,
                          NULL};
    int rc = 0;
    if (info->input_mean && (!mean || !std)) {
        fprintf(stderr, "nabla export: out of memory\n");
        rc = 1;
    } else if (nb_safetensors_save(out, t, 2 * m->n_layers, meta) != NB_OK) {
        fprintf(stderr, "nabla export: %s\n", nb_last_error());
        rc = 1;
    }
    free(mean);
    free(std);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nabla export --model MODEL.safetensors --format torch|npz --out FILE\n"
               "  The model's weights alone, named as PyTorch's nn.Sequential of Linear layers\n"
               "  with the activation between them (0.weight, 0.bias, 2.weight, ...):\n"
               "  torch: safetensors for Sequential.load_state_dict (input scale, shift, mean\n"
               "         and std as metadata strings); npz: a NumPy .npz of the same names plus\n"
               "         input.scale, input.shift (and input.mean, input.std when standardised).\n"
               "  Inputs are fed as ((x * input_scale + input_shift) - input_mean) / input_std.\n"
               "  --format may be left out when FILE ends in .npz or .safetensors; --out - is\n"
               "  standard output.\n");
}

int nb_cmd_export(int argc, char **argv)
{
    const char *model = NULL, *format = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        const char **dst = !strcmp(argv[i], "--model")    ? &model
                           : !strcmp(argv[i], "--format") ? &format
                           : !strcmp(argv[i], "--out")    ? &out
                                                          : NULL;
        if (!dst) {
            nb_cli_unknown_option("export", argv[i], usage);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nabla export: missing value for '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        *dst = argv[++i];
    }
    size_t ol = out ? strlen(out) : 0;
    if (!format && ol > 4 && !strcmp(out + ol - 4, ".npz"))
        format = "npz";
    else if (!format && ol > 12 && !strcmp(out + ol - 12, ".safetensors"))
        format = "torch";
    if (!model || !out || !format) {
        fprintf(stderr, "nabla export: --model, --out and --format (torch or npz) are required\n");
        return 2;
    }
    if (strcmp(format, "torch") && strcmp(format, "npz")) {
        fprintf(stderr, "nabla export: --format '%s': expected torch or npz\n", format);
        return 2;
    }
    if (nb_output_check(out, "nabla export") != NB_OK) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    if (nb_output_same_file(out, model)) {
        fprintf(stderr,
                "nabla export: --out '%s' is the same file as --model '%s'; writing it would "
                "destroy the checkpoint (choose another output file)\n",
                out, model);
        return 1;
    }
    nb_model_info info;
    nb_mlp *m = nb_model_load(model, &info, NULL);
    if (!m) {
        fprintf(stderr, "nabla export: %s\n", nb_last_error());
        return 1;
    }
    int rc = !strcmp(format, "npz") ? export_npz(m, &info, out) : export_torch(m, &info, out);
    if (rc == 0 && !nb_output_is_stream(out))
        fprintf(stderr, "nabla export: wrote %s (%s, %d Linear layers, %s)\n", out, format,
                m->n_layers, nb_activation_name(m->act));
    nb_mlp_free(m);
    nb_model_info_free(&info);
    return rc;
}
