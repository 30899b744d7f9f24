/* Native counterpart of wasm/tools/time-codec.mjs: same input, configs, warm-up and
 * best-of-N, against a native libopus built with gcc from the same tarball.
 *
 *   wasm/tools/time-native.sh [passes]       (builds .cache/native, then runs this)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <opus.h>

#define FS 48000
#define FRAME 960
#define SECONDS 10
#define FRAMES (FS * SECONDS / FRAME)
#define MAX_PACKET 1500

static double now_ms(void)
{
   struct timespec ts;
   /* CPU time of this thread: the machine is shared, see time-codec.mjs */
   clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
   return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static unsigned char packets[FRAMES][MAX_PACKET];
static int lens[FRAMES];

static double encode_pass(OpusEncoder *enc, const opus_int16 *in)
{
   int f;
   double t0;
   opus_encoder_ctl(enc, OPUS_RESET_STATE);
   t0 = now_ms();
   for (f = 0; f < FRAMES; f++) {
      lens[f] = opus_encode(enc, in + f * FRAME, FRAME, packets[f], MAX_PACKET);
      if (lens[f] < 0) { fprintf(stderr, "encode %d\n", lens[f]); exit(1); }
   }
   return (now_ms() - t0) / FRAMES;
}

static double decode_pass(OpusDecoder *dec, opus_int16 *out)
{
   int f;
   double t0;
   static opus_int16 scratch[FRAME];
   opus_decoder_ctl(dec, OPUS_RESET_STATE);
   t0 = now_ms();
   for (f = 0; f < FRAMES; f++) {
      int n = opus_decode(dec, packets[f], lens[f], out ? out + f * FRAME : scratch, FRAME, 0);
      if (n != FRAME) { fprintf(stderr, "decode %d\n", n); exit(1); }
   }
   return (now_ms() - t0) / FRAMES;
}

static void run(const char *name, int bitrate, int fec, int loss, int force_mode, int passes,
                const opus_int16 *in, opus_int16 *out)
{
   int err, p, w, lookahead, i;
   double enc_best = 1e9, dec_best = 1e9, sig = 0, e = 0;
   long bytes = 0;
   OpusEncoder *enc = opus_encoder_create(FS, 1, OPUS_APPLICATION_VOIP, &err);
   OpusDecoder *dec = opus_decoder_create(FS, 1, &err);
   opus_encoder_ctl(enc, OPUS_SET_BITRATE(bitrate));
   opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(10));
   opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(fec));
   opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(loss));
   if (force_mode) opus_encoder_ctl(enc, 11002, force_mode);
   opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&lookahead));
   encode_pass(enc, in);
   decode_pass(dec, out);
   for (i = 0; i < FRAMES; i++) bytes += lens[i];
   for (i = FS; i + lookahead < FS * SECONDS; i++) {
      double a = in[i], b = out[i + lookahead];
      sig += a * a;
      e += (a - b) * (a - b);
   }
   for (w = 0; w * FRAMES < 1000; w++) { encode_pass(enc, in); decode_pass(dec, NULL); }
   for (p = 0; p < passes; p++) {
      double te = encode_pass(enc, in), td = decode_pass(dec, NULL);
      if (te < enc_best) enc_best = te;
      if (td < dec_best) dec_best = td;
   }
   printf("config %s native: encode %.4f ms/frame, decode %.4f ms/frame, %.1f kbps, toc 0x%x, SNR %.1f dB\n",
          name, enc_best, dec_best, bytes * 8.0 / SECONDS / 1000, packets[FRAMES - 1][0],
          10 * log10(sig / (e > 1e-9 ? e : 1e-9)));
   opus_encoder_destroy(enc);
   opus_decoder_destroy(dec);
}

int main(int argc, char **argv)
{
   static opus_int16 in[FS * SECONDS], out[FS * SECONDS];
   int passes = argc > 1 ? atoi(argv[1]) : 7, i;
   double amp = 32767 * pow(10, -12 / 20.0);
   for (i = 0; i < FS * SECONDS; i++) {
      double t = (double)i / FS;
      /* floor(x + .5) is JS's Math.round, so both tools feed the same samples */
      in[i] = (opus_int16)floor(0.5 + amp * (0.8 * sin(2 * M_PI * 440 * t) + 0.2 * sin(2 * M_PI * 1320 * t)));
   }
   run("A", 32000, 1, 5, 0, passes, in, out);
   run("C", 16000, 0, 0, 1000, passes, in, out);
   return 0;
}
