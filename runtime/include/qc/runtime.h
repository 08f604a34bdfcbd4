/* qc runtime: load and run models compiled by qc, from C or C++.

   A model is either linked in (qc-compile --emit static, or qc_add_model in CMake: its generated
   header declares `const qc_model_def *<name>_model(void)`) or a shared library opened at run time
   (qc-compile --emit so).  Both give a qc_model handle:

       qc_model *m;
       if (qc_model_open("minilm.so", NULL, &m) != QC_OK) { fprintf(stderr, "%s\n", qc_last_error()); ... }
       int ids = qc_model_input_index(m, "input_ids");          // -1 if there is no such input
       const qc_tensor_info *t = qc_model_input(m, ids);        // name, dtype, rank, shape
       const void *inputs[] = {...};  void *outputs[] = {...};  // one contiguous buffer per tensor
       qc_model_run(m, inputs, outputs);
       qc_model_free(m);

   Every function reports failure through its result (a qc_status, NULL or -1) and leaves a message
   for qc_last_error(); none aborts.  A handle may be run from several threads at once, each call
   with its own input and output buffers; the weights are shared and read-only. */
#ifndef QC_RUNTIME_PUBLIC_H
#define QC_RUNTIME_PUBLIC_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QC_RUNTIME_VERSION "0.1.0"

typedef enum qc_status {
  QC_OK = 0,
  QC_ERROR_INVALID_ARGUMENT = 1, /* a NULL handle, an index out of range, a bad thread count */
  QC_ERROR_IO = 2,               /* a library or weight file that cannot be opened or read */
  QC_ERROR_INVALID_MODEL = 3,    /* not a model qc compiled, or one from an incompatible qc */
  QC_ERROR_UNSUPPORTED = 4,      /* the model needs what this machine lacks (e.g. AMX tiles) */
} qc_status;

typedef enum qc_dtype {
  QC_FLOAT32 = 0, QC_FLOAT64 = 1, QC_FLOAT16 = 2, QC_INT64 = 3, QC_INT32 = 4, QC_INT8 = 5, QC_UINT8 = 6,
  QC_BOOL = 7,
} qc_dtype;

typedef struct qc_tensor_info {
  const char *name;
  qc_dtype dtype;
  int rank;
  const int64_t *shape; /* rank dims, row-major, contiguous */
} qc_tensor_info;

typedef struct qc_model qc_model;
typedef struct qc_model_def qc_model_def;

/* The message of this thread's last failure ("" if none; never NULL). */
const char *qc_last_error(void);
const char *qc_status_name(qc_status status);

/* A shared model library (qc-compile --emit so).  weights_path NULL: the .qcw beside the library.
   The library stays loaded while the handle lives. */
qc_status qc_model_open(const char *library_path, const char *weights_path, qc_model **model);
/* Another entry point of a shared model library (a decoder's "decode"; NULL or "main": as
   qc_model_open).  Handles of one library share its weights in memory. */
qc_status qc_model_open_entry(const char *library_path, const char *entry, const char *weights_path,
                              qc_model **model);
/* A model linked into this program (its <name>_model()).  weights_path NULL: the weights embedded
   in the program (static models), or the .qcw beside the library that holds the model. */
qc_status qc_model_load(const qc_model_def *def, const char *weights_path, qc_model **model);
/* The same on a device: NULL or "" where the model was compiled for, "cpu", "cuda" (device 0, or
   QC_CUDA_DEVICE) or "cuda:<ordinal>".  A device of another kind than the model's is an error; a
   process runs its GPU models on one CUDA device (asking another later is an error). */
qc_status qc_model_load_on(const qc_model_def *def, const char *weights_path, const char *device, qc_model **model);
qc_status qc_model_open_on(const char *library_path, const char *entry, const char *weights_path, const char *device,
                           qc_model **model);
void qc_model_free(qc_model *model);

/* A zeroed buffer for the model's input or output tensors that a run reads or writes where it is: CUDA
   managed memory for a GPU model (which a run otherwise copies into and out of the device's buffers every
   time; the host reads and writes it as any memory), 64-byte aligned memory for a CPU model.  NULL (the error set) when out of
   memory.  Freed with qc_model_free_buffer before the model. */
void *qc_model_alloc(const qc_model *model, size_t bytes);
void qc_model_free_buffer(const qc_model *model, void *buffer);
/* rows runs of width bytes, from src (rows src_pitch bytes apart) to dst (dst_pitch apart): for a GPU
   model between its qc_model_alloc buffers on the device, in order with its runs (a run's outputs into
   a cache the next run reads, without the host touching either); memcpy for a CPU model. */
qc_status qc_model_copy_rows(const qc_model *model, void *dst, size_t dst_pitch, const void *src, size_t src_pitch,
                             size_t width, size_t rows);

/* Where the model runs, as compiled: "cpu", or "cuda:<chip>" (qc-compile --target). */
const char *qc_model_device(const qc_model *model);

const char *qc_model_name(const qc_model *model);
int qc_model_num_inputs(const qc_model *model);
int qc_model_num_outputs(const qc_model *model);
/* NULL (and the error set) when index is out of range. */
const qc_tensor_info *qc_model_input(const qc_model *model, int index);
const qc_tensor_info *qc_model_output(const qc_model *model, int index);
/* -1 (and the error set, naming the tensors there are) when there is no tensor of that name. */
int qc_model_input_index(const qc_model *model, const char *name);
int qc_model_output_index(const qc_model *model, const char *name);
/* JSON: {"inputs": [{"name", "shape", "dtype"}...], "outputs": [...], ...} */
const char *qc_model_signature(const qc_model *model);

size_t qc_dtype_size(qc_dtype dtype);
const char *qc_dtype_name(qc_dtype dtype); /* "float32", ... (numpy's names) */
size_t qc_tensor_elements(const qc_tensor_info *tensor);
size_t qc_tensor_bytes(const qc_tensor_info *tensor);

/* Threads one run of this handle may use: 1 ..= qc_max_threads() (the process's pool:
   QC_NUM_THREADS, default the CPUs); 0 = all.  A call that finds the pool busy with another
   call runs on its own thread. */
qc_status qc_model_set_num_threads(qc_model *model, int threads);
int qc_model_num_threads(const qc_model *model);
int qc_max_threads(void);

/* inputs[i] / outputs[i]: a contiguous buffer of qc_tensor_bytes(input i / output i) bytes. */
qc_status qc_model_run(qc_model *model, const void *const *inputs, void *const *outputs);

/* ---- generation: decoder models (qc-compile --max-context: entries "main" = prefill and "decode") ----

       qc_decoder *d;
       if (qc_decoder_open("stories.so", NULL, &d) != QC_OK) { fprintf(stderr, "%s\n", qc_last_error()); ... }
       qc_sampling greedy = {0};                              // or {.temperature = 0.8f, .top_k = 40, .seed = 1}
       qc_generate_stats stats;
       qc_generate(d, prompt, n_prompt, 200, &greedy, NULL, 0, print_token, NULL, NULL, &stats);
       qc_decoder_free(d);

   A decoder owns a KV cache of qc_decoder_context() positions: a prompt runs through the prefill
   entry in chunks (the last one padded), each further token through the decode entry, and each
   step's keys and values are written into the cache at its position.  One decoder is one
   sequence: use it from one thread at a time. */
typedef struct qc_decoder qc_decoder;

typedef struct qc_sampling {
  float temperature; /* <= 0: greedy (the most likely token; the lowest id among equals) */
  int top_k;         /* keep the k most likely tokens; 0: all */
  float top_p;       /* then the fewest most likely tokens whose probabilities reach top_p; 0 or >= 1: all */
  uint64_t seed;     /* of the sampler's random numbers: one seed, one sequence */
} qc_sampling;

typedef enum qc_stop_reason {
  QC_STOP_LENGTH = 0,   /* max_new_tokens generated */
  QC_STOP_TOKEN = 1,    /* a stop token was generated (it is the last token given) */
  QC_STOP_CALLBACK = 2, /* the callback returned nonzero */
  QC_STOP_CONTEXT = 3,  /* the KV cache is full */
} qc_stop_reason;

typedef struct qc_generate_stats {
  int64_t prompt_tokens, new_tokens;
  double prefill_seconds; /* the prompt through the model, to the first new token's logits */
  double decode_seconds;  /* the new tokens after the first: new_tokens - 1 decode steps */
  qc_stop_reason stopped;
} qc_generate_stats;

/* Called with each new token as it is chosen; nonzero stops the generation after it. */
typedef int (*qc_token_callback)(void *user, int64_t token);

qc_status qc_decoder_open(const char *library_path, const char *weights_path, qc_decoder **decoder);
/* Decoder models linked into this program: <name>_model() and <name>_decode_model(). */
qc_status qc_decoder_load(const qc_model_def *prefill, const qc_model_def *decode, const char *weights_path,
                          qc_decoder **decoder);
void qc_decoder_free(qc_decoder *decoder);
int64_t qc_decoder_context(const qc_decoder *decoder);  /* positions the cache holds (-1: NULL) */
int64_t qc_decoder_vocab(const qc_decoder *decoder);
int64_t qc_decoder_position(const qc_decoder *decoder); /* tokens in the cache: the next one's position */
qc_status qc_decoder_set_num_threads(qc_decoder *decoder, int threads);
/* Forgets the cache: the next token fed is at position 0. */
void qc_decoder_reset(qc_decoder *decoder);
/* Appends n >= 1 tokens at the current position; logits (vocab floats, or NULL) gets the last one's. */
qc_status qc_decoder_feed(qc_decoder *decoder, const int64_t *tokens, int64_t n, float *logits);
/* The next token by sampling's rule (logits is overwritten); *rng is the sampler's state, advanced
   (start it at sampling->seed). */
int64_t qc_sample(float *logits, int64_t vocab, const qc_sampling *sampling, uint64_t *rng);
/* reset, feed the prompt, then up to max_new_tokens new tokens, each given to callback (NULL: none)
   and stored in tokens_out (NULL, or room for max_new_tokens); a token of stop[0..n_stop) ends it. */
qc_status qc_generate(qc_decoder *decoder, const int64_t *prompt, int64_t n_prompt, int64_t max_new_tokens,
                      const qc_sampling *sampling, const int64_t *stop, int n_stop, qc_token_callback callback,
                      void *user, int64_t *tokens_out, qc_generate_stats *stats);

/* ---- what a compiled model exports (the runtime reads it; callers use the functions above) ---- */

#define QC_MODEL_ABI 3

struct qc_model_def {
  int abi;                     /* QC_MODEL_ABI */
  const char *name;            /* the C name it was compiled with */
  const char *signature;       /* JSON, as qc_model_signature */
  int num_inputs, num_outputs;
  const qc_tensor_info *inputs, *outputs;
  int (*load)(const char *weights_path, void **state); /* a qc_status; the message in last_error */
  int (*run)(void *state, const void *const *inputs, void *const *outputs); /* 0 on success */
  void (*set_threads)(void *state, int threads);
  void (*free)(void *state);
  const char *(*last_error)(void); /* the model's own messages (a shared model has its own runtime) */
  int (*max_threads)(void);
  int (*use_device)(int ordinal); /* GPU models: the CUDA device to run on (-1, last_error set, when the
                                     process already uses another); NULL for CPU models */
  void *(*alloc)(size_t bytes);    /* GPU models: zeroed CUDA managed memory, which runs read in place */
  void (*free_buffer)(void *p);    /* (NULL, both, for CPU models) */
  int (*copy_rows)(void *dst, size_t dst_pitch, const void *src, size_t src_pitch, size_t width, size_t rows);
                                   /* GPU models: on the device, after the runs queued before; 0 or -1 */
};

/* The symbol a shared model library exports for qc_model_open. */
#define QC_MODEL_ENTRY "qc_model_entry"

#ifdef __cplusplus
}
#endif
#endif
