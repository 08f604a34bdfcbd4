/* app X.bin OUT.bin: both models on x[4, 64]; writes their probs, static then shared. */
#include <stdio.h>

#include "mlp.h"
#include "mlp_shared.h"

int main(int argc, char **argv) {
  float x[4 * 64], a[40], b[40];
  FILE *f = argc == 3 ? fopen(argv[1], "rb") : NULL;
  if (!f || fread(x, sizeof x, 1, f) != 1) return 2;
  qc_model *m1, *m2;
  if (qc_model_load(mlp_model(), NULL, &m1) != QC_OK || qc_model_load(mlp_shared_model(), NULL, &m2) != QC_OK ||
      mlp_run(m1, x, a) != QC_OK || mlp_shared_run(m2, x, b) != QC_OK) {
    fprintf(stderr, "error: %s\n", qc_last_error());
    return 1;
  }
  f = fopen(argv[2], "wb");
  fwrite(a, sizeof a, 1, f);
  fwrite(b, sizeof b, 1, f);
  fclose(f);
  qc_model_free(m1);
  qc_model_free(m2);
  return 0;
}
