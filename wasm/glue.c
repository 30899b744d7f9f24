/* VoxLink glue for opus.wasm (see wasm/ABI.md).
 *
 * opus_encoder_ctl()/opus_decoder_ctl() are variadic, and a variadic C function cannot be
 * called through a wasm export from JavaScript (wasm32 passes the variadic part in a
 * caller-built stack buffer). These wrappers give every ctl a fixed signature:
 *   set: OPUS_SET_* requests, one opus_int32 argument (Opus API, opus_defines.h);
 *   get: OPUS_GET_* requests, one pointer to a 32-bit slot (opus_int32 or opus_uint32,
 *        e.g. OPUS_GET_FINAL_RANGE).
 * Opus numbers its SET requests even and its GET requests odd. A request of the wrong
 * parity would make libopus read an int as a pointer (or the reverse) and scribble over
 * wasm memory, so it is refused with OPUS_BAD_ARG. Even requests whose argument is not a
 * single int (OPUS_RESET_STATE: none; OPUS_SET_DNN_BLOB: pointer + length;
 * OPUS_SET_ENERGY_MASK: pointer) are refused as well; reset has its own wrapper.
 *
 * The mix kernels are plain loops on purpose: clang vectorises them to wasm SIMD
 * (f32x4) under -O3 -msimd128, and the audio code measures them against plain TS.
 */
#include <stddef.h>
#include <opus.h>

#define VX_EXPORT __attribute__((used, visibility("default")))

/* From opus_private.h (not an installed header): OPUS_SET_ENERGY_MASK takes a pointer. */
#define VX_OPUS_SET_ENERGY_MASK_REQUEST 10026

static int vx_is_int_set(int request)
{
   return (request & 1) == 0 && request != OPUS_RESET_STATE &&
          request != OPUS_SET_DNN_BLOB_REQUEST && request != VX_OPUS_SET_ENERGY_MASK_REQUEST;
}

static int vx_is_get(int request)
{
   return (request & 1) == 1;
}

VX_EXPORT int vx_encoder_ctl_set(OpusEncoder *st, int request, int value)
{
   if (st == NULL || !vx_is_int_set(request)) return OPUS_BAD_ARG;
   return opus_encoder_ctl(st, request, (opus_int32)value);
}

VX_EXPORT int vx_encoder_ctl_get(OpusEncoder *st, int request, int *out)
{
   if (st == NULL || out == NULL || !vx_is_get(request)) return OPUS_BAD_ARG;
   return opus_encoder_ctl(st, request, (opus_int32 *)out);
}

VX_EXPORT int vx_decoder_ctl_set(OpusDecoder *st, int request, int value)
{
   if (st == NULL || !vx_is_int_set(request)) return OPUS_BAD_ARG;
   return opus_decoder_ctl(st, request, (opus_int32)value);
}

VX_EXPORT int vx_decoder_ctl_get(OpusDecoder *st, int request, int *out)
{
   if (st == NULL || out == NULL || !vx_is_get(request)) return OPUS_BAD_ARG;
   return opus_decoder_ctl(st, request, (opus_int32 *)out);
}

VX_EXPORT int vx_encoder_reset(OpusEncoder *st)
{
   if (st == NULL) return OPUS_BAD_ARG;
   return opus_encoder_ctl(st, OPUS_RESET_STATE);
}

VX_EXPORT int vx_decoder_reset(OpusDecoder *st)
{
   if (st == NULL) return OPUS_BAD_ARG;
   return opus_decoder_ctl(st, OPUS_RESET_STATE);
}

/* acc += src */
VX_EXPORT void vx_mix_add(float *restrict acc, const float *restrict src, int n)
{
   int i;
   for (i = 0; i < n; i++) acc[i] += src[i];
}

/* out = acc - src: a speaker's mix without their own voice. out may alias acc. */
VX_EXPORT void vx_mix_sub(float *out, const float *acc, const float *src, int n)
{
   int i;
   for (i = 0; i < n; i++) out[i] = acc[i] - src[i];
}

/* io *= gain */
VX_EXPORT void vx_mix_scale(float *io, int n, float gain)
{
   int i;
   for (i = 0; i < n; i++) io[i] *= gain;
}
