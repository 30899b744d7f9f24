/* Native libopus timing harness for bench/codec (VoxLink).
 *
 * Reads raw interleaved float32 little-endian PCM, encodes it in 20 ms frames with
 * opus_encode_float and decodes the packets with opus_decode_float, each `passes` times with a
 * fresh encoder/decoder. The signal is timed in chunks of CHUNK frames; each chunk keeps its
 * fastest pass (on a shared, loaded host this drops the chunks where the process was preempted),
 * and the sum is printed as milliseconds per 20 ms frame (JSON on one line), exactly as
 * bench/codec/index.ts times the wasm and opusscript runs. The first pass is warm-up, not timed.
 *
 *   native-harness pcm.f32 rate channels application bitrate complexity fec loss max_bandwidth passes
 * complexity -1 and max_bandwidth 0 keep libopus's defaults.
 */
#include <opus.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_PACKET 4000
#define CHUNK 25

/* Process CPU time, not wall time: on a shared, loaded host it leaves out the time the process
 * waited for a core. bench/codec/index.ts measures the JS side with process.cpuUsage() to match. */
static double now_ms(void)
{
   struct timespec ts;
   clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
   return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int check(int err, const char *what)
{
   if (err < 0) {
      fprintf(stderr, "%s: %s\n", what, opus_strerror(err));
      exit(1);
   }
   return err;
}

int main(int argc, char **argv)
{
   if (argc != 11) {
      fprintf(stderr, "usage: %s pcm.f32 rate channels application bitrate complexity fec loss max_bandwidth passes\n", argv[0]);
      return 2;
   }
   const char *path = argv[1];
   int rate = atoi(argv[2]), channels = atoi(argv[3]), application = atoi(argv[4]);
   int bitrate = atoi(argv[5]), complexity = atoi(argv[6]), fec = atoi(argv[7]), loss = atoi(argv[8]);
   int max_bandwidth = atoi(argv[9]), passes = atoi(argv[10]);
   int frame = rate / 50;

   FILE *f = fopen(path, "rb");
   if (!f) { perror(path); return 1; }
   fseek(f, 0, SEEK_END);
   long bytes = ftell(f);
   fseek(f, 0, SEEK_SET);
   float *pcm = malloc(bytes);
   if (fread(pcm, 1, bytes, f) != (size_t)bytes) { perror("read"); return 1; }
   fclose(f);
   int frames = (int)(bytes / sizeof(float) / channels / frame);

   unsigned char *packets = malloc((size_t)frames * MAX_PACKET);
   int *lengths = malloc(sizeof(int) * frames);
   float *out = malloc(sizeof(float) * frame * channels * 6);
   if (passes < 2) passes = 2;
   int chunks = (frames + CHUNK - 1) / CHUNK;
   double *best_enc = malloc(sizeof(double) * chunks), *best_dec = malloc(sizeof(double) * chunks);
   for (int c = 0; c < chunks; c++) best_enc[c] = best_dec[c] = 1e30;
   long total_bytes = 0;
   int err;

   for (int p = 0; p < passes; p++) {
      OpusEncoder *enc = opus_encoder_create(rate, channels, application, &err);
      check(err, "opus_encoder_create");
      check(opus_encoder_ctl(enc, OPUS_SET_BITRATE(bitrate)), "bitrate");
      if (complexity >= 0) check(opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(complexity)), "complexity");
      check(opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(fec)), "fec");
      check(opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(loss)), "loss");
      if (max_bandwidth > 0) check(opus_encoder_ctl(enc, OPUS_SET_MAX_BANDWIDTH(max_bandwidth)), "max bandwidth");
      total_bytes = 0;
      for (int c = 0; c < chunks; c++) {
         double t0 = now_ms();
         for (int i = c * CHUNK; i < frames && i < (c + 1) * CHUNK; i++) {
            lengths[i] = check(opus_encode_float(enc, pcm + (size_t)i * frame * channels, frame,
                                                 packets + (size_t)i * MAX_PACKET, MAX_PACKET), "opus_encode_float");
            total_bytes += lengths[i];
         }
         double t = now_ms() - t0;
         if (p > 0 && t < best_enc[c]) best_enc[c] = t;
      }
      opus_encoder_destroy(enc);
   }
   for (int p = 0; p < passes; p++) {
      OpusDecoder *dec = opus_decoder_create(rate, channels, &err);
      check(err, "opus_decoder_create");
      for (int c = 0; c < chunks; c++) {
         double t0 = now_ms();
         for (int i = c * CHUNK; i < frames && i < (c + 1) * CHUNK; i++) {
            check(opus_decode_float(dec, packets + (size_t)i * MAX_PACKET, lengths[i], out, frame * 6, 0), "opus_decode_float");
         }
         double t = now_ms() - t0;
         if (p > 0 && t < best_dec[c]) best_dec[c] = t;
      }
      opus_decoder_destroy(dec);
   }
   double sum_enc = 0, sum_dec = 0;
   for (int c = 0; c < chunks; c++) {
      sum_enc += best_enc[c];
      sum_dec += best_dec[c];
   }
   printf("{\"version\":\"%s\",\"frames\":%d,\"bytes\":%ld,\"encodeMsPerFrame\":%.6f,\"decodeMsPerFrame\":%.6f",
          opus_get_version_string(), frames, total_bytes, sum_enc / frames, sum_dec / frames);
   /* Per-chunk times, so the caller can take the best across several runs interleaved with
    * the other implementations. */
   printf(",\"chunk\":%d,\"encodeChunks\":[", CHUNK);
   for (int c = 0; c < chunks; c++) printf("%s%.6f", c ? "," : "", best_enc[c]);
   printf("],\"decodeChunks\":[");
   for (int c = 0; c < chunks; c++) printf("%s%.6f", c ? "," : "", best_dec[c]);
   printf("]}\n");
   return 0;
}
