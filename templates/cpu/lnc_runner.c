/* lnc_runner: runs the generated model on .npy files.
 *
 *   lnc_runner --input X.npy [--input ...] --output Y.npy [--output ...] [--repeat N]
 *              [--threads T]
 *
 * Inputs and outputs are little-endian float32 C-order arrays in graph order. With
 * --repeat N the model runs once to warm up, then N timed times, and a JSON line
 * {"runs":N,"median_ms":..,"min_ms":..,"max_ms":..,"threads":T} is printed to stdout.
 */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fail(const char *msg, const char *arg) {
    fprintf(stderr, "lnc_runner: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    return 1;
}

static float *read_npy(const char *path, const lnc_tensor_info *info) {
    FILE *f = fopen(path, "rb");
    unsigned char pre[10];
    char hdr[4096], want[256], *p;
    unsigned hlen;
    long dims[8], nd = 0, numel = 1, i;
    float *data;
    if (!f) { fail("cannot open", path); return NULL; }
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fclose(f); fail("not a .npy file", path); return NULL;
    }
    if (pre[6] == 1) {
        hlen = pre[8] | (pre[9] << 8);
    } else {
        unsigned char ext[2];
        if (fread(ext, 1, 2, f) != 2) { fclose(f); fail("truncated header", path); return NULL; }
        hlen = pre[8] | (pre[9] << 8) | ((unsigned)ext[0] << 16) | ((unsigned)ext[1] << 24);
    }
    if (hlen >= sizeof hdr || fread(hdr, 1, hlen, f) != hlen) {
        fclose(f); fail("bad header", path); return NULL;
    }
    hdr[hlen] = 0;
    if (!strstr(hdr, "'<f4'") || strstr(hdr, "'fortran_order': True")) {
        fclose(f); fail("expected a little-endian float32 C-order array", path); return NULL;
    }
    p = strstr(hdr, "'shape':");
    p = p ? strchr(p, '(') : NULL;
    if (!p) { fclose(f); fail("no shape in header", path); return NULL; }
    p++;
    while (*p && *p != ')') {
        char *end;
        long d = strtol(p, &end, 10);
        if (end == p) { p++; continue; }
        if (nd < 8) dims[nd++] = d;
        p = end;
    }
    for (i = 0; i < nd; i++) numel *= dims[i];
    if (nd != info->rank || numel != info->numel) {
        fclose(f);
        snprintf(want, sizeof want, "%s: shape does not match input '%s'", path, info->name);
        fail(want, NULL);
        return NULL;
    }
    for (i = 0; i < nd; i++)
        if (dims[i] != info->shape[i]) {
            fclose(f);
            snprintf(want, sizeof want, "%s: shape does not match input '%s'", path, info->name);
            fail(want, NULL);
            return NULL;
        }
    data = (float *)malloc((size_t)(numel > 0 ? numel : 1) * sizeof(float));
    if (!data || fread(data, sizeof(float), (size_t)numel, f) != (size_t)numel) {
        fclose(f); free(data); fail("truncated data", path); return NULL;
    }
    fclose(f);
    return data;
}

static int write_npy(const char *path, const lnc_tensor_info *info, const float *data) {
    char hdr[512], shape[256];
    size_t len, pad, i;
    FILE *f;
    shape[0] = 0;
    for (i = 0; i < (size_t)info->rank; i++) {
        char d[32];
        snprintf(d, sizeof d, "%ld,%s", info->shape[i], (info->rank > 1 && i + 1 < (size_t)info->rank) ? " " : "");
        strcat(shape, d);
    }
    if (info->rank > 1) shape[strlen(shape) - 1] = 0;
    snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
    len = strlen(hdr);
    pad = 64 - ((10 + len + 1) % 64);
    if (pad == 64) pad = 0;
    for (i = 0; i < pad; i++) hdr[len + i] = ' ';
    hdr[len + pad] = '\n';
    len += pad + 1;
    f = fopen(path, "wb");
    if (!f) return fail("cannot write", path);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((int)(len & 0xff), f);
    fputc((int)(len >> 8), f);
    fwrite(hdr, 1, len, f);
    fwrite(data, sizeof(float), (size_t)info->numel, f);
    if (fclose(f) != 0) return fail("cannot write", path);
    return 0;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

int main(int argc, char **argv) {
    const char *in_paths[LNC_MODEL_NUM_INPUTS + 1] = {0}, *out_paths[LNC_MODEL_NUM_OUTPUTS + 1] = {0};
    const float *ins[LNC_MODEL_NUM_INPUTS + 1] = {0};
    float *outs[LNC_MODEL_NUM_OUTPUTS + 1] = {0};
    int nin = 0, nout = 0, repeat = 0, threads = LNC_MODEL_THREADS, i, rc = 0;
    void *scratch;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--input") && i + 1 < argc) {
            if (nin >= LNC_MODEL_NUM_INPUTS) return fail("too many --input", NULL);
            in_paths[nin++] = argv[++i];
        } else if (!strcmp(argv[i], "--output") && i + 1 < argc) {
            if (nout >= LNC_MODEL_NUM_OUTPUTS) return fail("too many --output", NULL);
            out_paths[nout++] = argv[++i];
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            repeat = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            return fail("usage: lnc_runner --input X.npy ... [--output Y.npy ...] [--repeat N] [--threads T]", NULL);
        }
    }
    if (nin != LNC_MODEL_NUM_INPUTS) return fail("wrong number of --input", NULL);
    for (i = 0; i < nin; i++) {
        ins[i] = read_npy(in_paths[i], &lnc_model_inputs[i]);
        if (!ins[i]) return 1;
    }
    for (i = 0; i < LNC_MODEL_NUM_OUTPUTS; i++) {
        outs[i] = (float *)malloc((size_t)(lnc_model_outputs[i].numel + 1) * sizeof(float));
        if (!outs[i]) return fail("out of memory", NULL);
    }
    scratch = malloc(lnc_model_scratch_size() + 64);
    if (!scratch) return fail("out of memory", NULL);
    threads = lnc_model_init(threads);
    lnc_model_run(scratch, ins, outs);
    if (repeat > 0) {
        double *t = (double *)malloc((size_t)repeat * sizeof(double));
        if (!t) return fail("out of memory", NULL);
        for (i = 0; i < repeat; i++) {
            double t0 = now_ms();
            lnc_model_run(scratch, ins, outs);
            t[i] = now_ms() - t0;
        }
        qsort(t, (size_t)repeat, sizeof(double), cmp_double);
        printf("{\"runs\":%d,\"median_ms\":%.4f,\"min_ms\":%.4f,\"max_ms\":%.4f,\"threads\":%d}\n",
               repeat, repeat % 2 ? t[repeat / 2] : 0.5 * (t[repeat / 2 - 1] + t[repeat / 2]),
               t[0], t[repeat - 1], threads);
        free(t);
    }
#if defined(LNC_PROFILE)
    {
        void lnc_model_profile_print(void);
        lnc_model_profile_print();
    }
#endif
    for (i = 0; i < nout; i++)
        if (write_npy(out_paths[i], &lnc_model_outputs[i], outs[i])) rc = 1;
    lnc_model_shutdown();
    for (i = 0; i < nin; i++) free((void *)ins[i]);
    for (i = 0; i < LNC_MODEL_NUM_OUTPUTS; i++) free(outs[i]);
    free(scratch);
    return rc;
}
