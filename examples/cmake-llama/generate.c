/* generate N PROMPT_ID... [-o FILE]: N greedy tokens after the prompt, printed (and written to FILE).
   The model takes a fixed window of tokens and is causal, so the logits at position t depend on
   tokens 0..t only: the window is filled from the left and the rest padded with token 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stories.h"

int main(int argc, char **argv) {
  const char *path = NULL;
  int64_t steps = 0, count = 0;
  qc_model *model;
  if (qc_model_load(stories_model(), NULL, &model) != QC_OK) {
    fprintf(stderr, "error: %s\n", qc_last_error());
    return 1;
  }
  const qc_tensor_info *in = qc_model_input(model, 0), *out = qc_model_output(model, 0);
  int64_t window = in->shape[1], vocab = out->shape[2];
  int64_t *tokens = calloc((size_t)window, sizeof *tokens);
  for (int a = 1; a < argc; a++) {
    if (!strcmp(argv[a], "-o") && a + 1 < argc) path = argv[++a];
    else if (!steps) steps = atoll(argv[a]);
    else if (count < window) tokens[count++] = atoll(argv[a]);
  }
  if (steps < 1 || count < 1 || count + steps > window) {
    fprintf(stderr, "usage: %s N PROMPT_ID... [-o FILE] (prompt + N <= %lld tokens)\n", argv[0], (long long)window);
    return 1;
  }
  for (int64_t i = 0; i < count; i++)
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      fprintf(stderr, "error: token id %lld is outside the vocabulary [0, %lld)\n", (long long)tokens[i], (long long)vocab);
      return 1;
    }
  float *logits = malloc(qc_tensor_bytes(out));
  FILE *f = path ? fopen(path, "w") : NULL;
  for (int64_t step = 0; step < steps; step++, count++) {
    if (stories_run(model, tokens, logits) != QC_OK) {
      fprintf(stderr, "error: %s\n", qc_last_error());
      return 1;
    }
    const float *row = logits + (count - 1) * vocab;
    int64_t best = 0;
    for (int64_t v = 1; v < vocab; v++)
      if (row[v] > row[best]) best = v;
    tokens[count] = best;
  }
  for (int64_t i = 0; i < count; i++) {
    printf("%lld%c", (long long)tokens[i], i + 1 < count ? ' ' : '\n');
    if (f) fprintf(f, "%lld%c", (long long)tokens[i], i + 1 < count ? ' ' : '\n');
  }
  if (f) fclose(f);
  qc_model_free(model);
  return 0;
}
