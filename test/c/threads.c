/* threads MODEL.so THREADS RUNS: one handle run from THREADS threads at once, RUNS times each, each
   call with its own buffers; every output must equal a single-threaded run's, byte for byte.  Also
   checks that the API's misuse answers with a status and a message, never an abort. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/runtime.h"

static qc_model *model;
static void *inputs[16], *reference[16];
static int runs, n_in, n_out, failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

#define EXPECT(cond, ...) do { if (!(cond)) { printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); return 1; } } while (0)

static void *worker(void *arg) {
  (void)arg;
  void *out[16];
  for (int i = 0; i < n_out; i++) out[i] = malloc(qc_tensor_bytes(qc_model_output(model, i)));
  for (int r = 0; r < runs; r++) {
    int bad = qc_model_run(model, (const void *const *)inputs, out) != QC_OK;
    for (int i = 0; !bad && i < n_out; i++) bad = memcmp(out[i], reference[i], qc_tensor_bytes(qc_model_output(model, i))) != 0;
    if (bad) { pthread_mutex_lock(&lock); failures++; pthread_mutex_unlock(&lock); }
  }
  for (int i = 0; i < n_out; i++) free(out[i]);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  int threads = atoi(argv[2]);
  runs = atoi(argv[3]);

  qc_model *none = (qc_model *)1;
  EXPECT(qc_model_open("/nonexistent/model.so", NULL, &none) == QC_ERROR_IO && none == NULL, "open of a missing file");
  EXPECT(strstr(qc_last_error(), "/nonexistent/model.so") != NULL, "message names the file: %s", qc_last_error());
  EXPECT(qc_model_run(NULL, NULL, NULL) == QC_ERROR_INVALID_ARGUMENT, "run of NULL");

  qc_status s = qc_model_open(argv[1], NULL, &model);
  EXPECT(s == QC_OK, "open: %s: %s", qc_status_name(s), qc_last_error());
  n_in = qc_model_num_inputs(model);
  n_out = qc_model_num_outputs(model);
  EXPECT(qc_model_input(model, n_in) == NULL && strstr(qc_last_error(), "no index"), "index out of range: %s", qc_last_error());
  EXPECT(qc_model_input_index(model, "no such input") == -1 && strstr(qc_last_error(), "no input named"), "%s", qc_last_error());
  const qc_tensor_info *first = qc_model_input(model, 0);
  EXPECT(qc_model_input_index(model, first->name) == 0, "input by name");
  EXPECT(qc_model_set_num_threads(model, qc_max_threads() + 1) == QC_ERROR_INVALID_ARGUMENT, "too many threads");
  const void *missing[16] = {0};
  void *outs[16] = {0};
  EXPECT(qc_model_run(model, missing, outs) == QC_ERROR_INVALID_ARGUMENT && strstr(qc_last_error(), "is NULL"),
         "NULL buffer: %s", qc_last_error());

  srand(7);
  for (int i = 0; i < n_in; i++) {
    const qc_tensor_info *t = qc_model_input(model, i);
    EXPECT(t->dtype == QC_FLOAT32, "this test feeds float32 inputs");
    float *x = malloc(qc_tensor_bytes(t));
    for (size_t k = 0; k < qc_tensor_elements(t); k++) x[k] = (float)rand() / RAND_MAX * 8.0f - 4.0f;
    inputs[i] = x;
  }
  for (int i = 0; i < n_out; i++) reference[i] = malloc(qc_tensor_bytes(qc_model_output(model, i)));
  EXPECT(qc_model_set_num_threads(model, 1) == QC_OK && qc_model_num_threads(model) == 1, "one thread");
  EXPECT(qc_model_run(model, (const void *const *)inputs, reference) == QC_OK, "run: %s", qc_last_error());

  EXPECT(qc_model_set_num_threads(model, 0) == QC_OK, "all threads");
  pthread_t pool[64];
  for (int t = 0; t < threads; t++) pthread_create(&pool[t], NULL, worker, NULL);
  for (int t = 0; t < threads; t++) pthread_join(pool[t], NULL);
  EXPECT(failures == 0, "%d of %d runs from %d threads differ from the single-threaded run", failures, threads * runs, threads);
  printf("ok: %d runs from %d threads equal the single-threaded run (%s, %d inputs, %d outputs)\n", threads * runs,
         threads, qc_model_name(model), n_in, n_out);
  qc_model_free(model);
  return 0;
}
