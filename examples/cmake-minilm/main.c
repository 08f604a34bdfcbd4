/* embed TOKENS.bin OUT.bin: one sentence embedding (float32[384]) per tokenized sentence.
   TOKENS.bin: int64 count, int64 seq, then per sentence int64 input_ids[seq], attention_mask[seq],
   token_type_ids[seq] (prepare.py writes it). */
#include <stdio.h>
#include <stdlib.h>

#include "minilm.h"

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s TOKENS.bin OUT.bin\n", argv[0]);
    return 1;
  }
  qc_model *model;
  if (qc_model_load(minilm_model(), NULL, &model) != QC_OK) {
    fprintf(stderr, "error: %s\n", qc_last_error());
    return 1;
  }
  const qc_tensor_info *ids_info = qc_model_input(model, MINILM_INPUT_INPUT_IDS);
  const qc_tensor_info *out_info = qc_model_output(model, MINILM_OUTPUT_SENTENCE_EMBEDDING);
  FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
  int64_t header[2];
  if (!in || !out || fread(header, sizeof header, 1, in) != 1) {
    fprintf(stderr, "error: cannot read %s or write %s\n", argv[1], argv[2]);
    return 1;
  }
  int64_t count = header[0], seq = header[1];
  if (seq != ids_info->shape[1]) {
    fprintf(stderr, "error: %s holds sequences of %lld tokens; the model takes %lld\n", argv[1], (long long)seq,
            (long long)ids_info->shape[1]);
    return 1;
  }
  int64_t *tokens = malloc(3 * seq * sizeof *tokens);
  float *embedding = malloc(qc_tensor_bytes(out_info));
  for (int64_t i = 0; i < count; i++) {
    if (fread(tokens, sizeof *tokens, 3 * seq, in) != (size_t)(3 * seq)) {
      fprintf(stderr, "error: %s is truncated\n", argv[1]);
      return 1;
    }
    if (minilm_run(model, tokens, tokens + seq, tokens + 2 * seq, embedding) != QC_OK) {
      fprintf(stderr, "error: %s\n", qc_last_error());
      return 1;
    }
    fwrite(embedding, 1, qc_tensor_bytes(out_info), out);
  }
  printf("embedded %lld sentences into %s (%zu floats each)\n", (long long)count, argv[2],
         qc_tensor_elements(out_info));
  fclose(in);
  fclose(out);
  qc_model_free(model);
  return 0;
}
