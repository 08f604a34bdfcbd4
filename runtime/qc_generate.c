/* qc runtime: generation with decoder models (qc/runtime.h, "generation"), over the public model API.

   A decoder model has two entries compiled from one step graph: prefill takes T tokens, decode one;
   both take (tokens [1, T] int64, pos [1] int64, k_cache [layers, kv heads, head, context],
   v_cache [layers, kv heads, context, head]) and give (logits [1, T, vocab], k_new [layers, kv heads,
   head, T], v_new [layers, kv heads, T, head]): keys are kept transposed, so that the model's scores
   read them as they lie.  The cache and the new entries are float32, float16 or int8, as the model
   was compiled (--kv-cache); an int8 cache comes with f32 scales, one per layer, head and position:
   inputs k_scale, v_scale [layers, kv heads, context], outputs k_new_scale, v_new_scale [layers,
   kv heads, T].  This file owns the cache and writes each step's new entries into it at pos. */
#define _GNU_SOURCE
#include "qc/runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qc_support.h"

#define FAIL(status, ...) (qc_set_error(__VA_ARGS__), (status))

enum { TOKENS, POS, K_CACHE, V_CACHE, K_SCALE, V_SCALE, N_IN };
enum { LOGITS, K_NEW, V_NEW, K_NEW_SCALE, V_NEW_SCALE, N_OUT };
static const char *const INPUT_NAMES[] = {"tokens", "pos", "k_cache", "v_cache", "k_scale", "v_scale"};
static const char *const OUTPUT_NAMES[] = {"logits", "k_new", "v_new", "k_new_scale", "v_new_scale"};

typedef struct {
  qc_model *model;
  int64_t tokens; /* T */
  int scaled;        /* an int8 cache: the scale inputs and outputs too */
  int n_in, n_out;   /* N_IN, N_OUT when scaled, else the first four and three */
  int in[N_IN], out[N_OUT]; /* the model's index of each tensor */
  int64_t *token_buf;
  void *outputs[N_OUT]; /* logits float32, k_new and v_new of the cache's type, scales float32 */
} step;

struct qc_decoder {
  step prefill, decode;
  int64_t layers, kv_heads, context, head, vocab, pos;
  qc_dtype cache_type;
  size_t elt; /* bytes per cache element */
  char *k_cache, *v_cache;
  float *k_scale, *v_scale; /* an int8 cache's, [layers, kv heads, context] */
};

static qc_status bind(step *s, qc_model *model, const char *role) {
  s->model = model;
  s->scaled = qc_model_num_inputs(model) > K_SCALE && qc_model_input_index(model, INPUT_NAMES[K_SCALE]) >= 0;
  s->n_in = s->scaled ? N_IN : K_SCALE, s->n_out = s->scaled ? N_OUT : K_NEW_SCALE;
  for (int i = 0; i < s->n_in; i++)
    if ((s->in[i] = qc_model_input_index(model, INPUT_NAMES[i])) < 0)
      return FAIL(QC_ERROR_INVALID_MODEL, "model '%s' (%s) is not a decoder step: %s", qc_model_name(model), role,
                  qc_last_error());
  for (int i = 0; i < s->n_out; i++)
    if ((s->out[i] = qc_model_output_index(model, OUTPUT_NAMES[i])) < 0)
      return FAIL(QC_ERROR_INVALID_MODEL, "model '%s' (%s) is not a decoder step: %s", qc_model_name(model), role,
                  qc_last_error());
  const qc_tensor_info *tokens = qc_model_input(model, s->in[TOKENS]);
  if (tokens->rank != 2 || tokens->shape[0] != 1 || tokens->dtype != QC_INT64)
    return FAIL(QC_ERROR_INVALID_MODEL, "decoder '%s' (%s): input 'tokens' must be int64[1xT]", qc_model_name(model),
                role);
  s->tokens = tokens->shape[1];
  s->token_buf = calloc((size_t)s->tokens, sizeof *s->token_buf);
  for (int i = 0; i < s->n_out; i++) /* (a GPU step writes them where they are, and they go into the cache there) */
    if (!(s->outputs[i] = qc_model_alloc(model, qc_tensor_bytes(qc_model_output(model, s->out[i])))))
      return FAIL(QC_ERROR_IO, "out of memory");
  if (!s->token_buf) return FAIL(QC_ERROR_IO, "out of memory");
  return QC_OK;
}

static int same_shape(const qc_tensor_info *t, const int64_t *shape, int rank, qc_dtype dtype) {
  if (t->rank != rank || t->dtype != dtype) return 0;
  for (int i = 0; i < rank; i++)
    if (t->shape[i] != shape[i]) return 0;
  return 1;
}

/* The shapes both steps must agree on, read from the prefill step's cache input. */
static qc_status check_shapes(qc_decoder *d, const step *s, const char *role) {
  int64_t keys[4] = {d->layers, d->kv_heads, d->head, d->context}, values[4] = {d->layers, d->kv_heads, d->context, d->head};
  int64_t new_keys[4] = {d->layers, d->kv_heads, d->head, s->tokens};
  int64_t new_values[4] = {d->layers, d->kv_heads, s->tokens, d->head};
  int64_t logits[3] = {1, s->tokens, d->vocab};
  const qc_model *m = s->model;
  qc_dtype c = d->cache_type;
  const char *bad = !same_shape(qc_model_input(m, s->in[K_CACHE]), keys, 4, c)              ? "k_cache"
                    : !same_shape(qc_model_input(m, s->in[V_CACHE]), values, 4, c)          ? "v_cache"
                    : !same_shape(qc_model_output(m, s->out[K_NEW]), new_keys, 4, c)        ? "k_new"
                    : !same_shape(qc_model_output(m, s->out[V_NEW]), new_values, 4, c)      ? "v_new"
                    : !same_shape(qc_model_output(m, s->out[LOGITS]), logits, 3, QC_FLOAT32) ? "logits"
                                                                                             : NULL;
  int64_t scales[3] = {d->layers, d->kv_heads, d->context}, new_scales[3] = {d->layers, d->kv_heads, s->tokens};
  if (!bad && (c == QC_INT8) != s->scaled) bad = s->scaled ? "k_scale" : "k_cache";
  if (!bad && s->scaled)
    bad = !same_shape(qc_model_input(m, s->in[K_SCALE]), scales, 3, QC_FLOAT32)               ? "k_scale"
          : !same_shape(qc_model_input(m, s->in[V_SCALE]), scales, 3, QC_FLOAT32)             ? "v_scale"
          : !same_shape(qc_model_output(m, s->out[K_NEW_SCALE]), new_scales, 3, QC_FLOAT32) ? "k_new_scale"
          : !same_shape(qc_model_output(m, s->out[V_NEW_SCALE]), new_scales, 3, QC_FLOAT32) ? "v_new_scale"
                                                                                              : NULL;
  if (bad)
    return FAIL(QC_ERROR_INVALID_MODEL, "decoder '%s' (%s): '%s' does not have the shape of a %lld-layer, %lld-head, "
                "%lld-position %s cache step (k_cache [layers, kv heads, head, context], v_cache [layers, kv heads, "
                "context, head], k_new [layers, kv heads, head, T], v_new [layers, kv heads, T, head], logits float32 "
                "[1, T, vocab]; an int8 cache with float32 k_scale, v_scale [layers, kv heads, context] and "
                "k_new_scale, v_new_scale [layers, kv heads, T]; one compiled by an older qc must be compiled again)",
                qc_model_name(m), role, bad, (long long)d->layers, (long long)d->kv_heads, (long long)d->context,
                qc_dtype_name(c));
  const qc_tensor_info *pos = qc_model_input(m, s->in[POS]);
  if (pos->rank != 1 || pos->shape[0] != 1 || pos->dtype != QC_INT64)
    return FAIL(QC_ERROR_INVALID_MODEL, "decoder '%s' (%s): input 'pos' must be int64[1]", qc_model_name(m), role);
  return QC_OK;
}

static qc_status setup(qc_decoder *d) {
  qc_status st = bind(&d->prefill, d->prefill.model, "prefill");
  if (st == QC_OK) st = bind(&d->decode, d->decode.model, "decode");
  if (st != QC_OK) return st;
  const qc_tensor_info *cache = qc_model_input(d->prefill.model, d->prefill.in[V_CACHE]);
  const qc_tensor_info *logits = qc_model_output(d->prefill.model, d->prefill.out[LOGITS]);
  if (cache->rank != 4 || logits->rank != 3)
    return FAIL(QC_ERROR_INVALID_MODEL, "decoder '%s': v_cache must be [layers, kv heads, context, head] and logits "
                "[1, T, vocab]", qc_model_name(d->prefill.model));
  d->layers = cache->shape[0], d->kv_heads = cache->shape[1], d->context = cache->shape[2], d->head = cache->shape[3];
  d->cache_type = cache->dtype, d->elt = qc_dtype_size(cache->dtype);
  if (cache->dtype != QC_FLOAT32 && cache->dtype != QC_FLOAT16 && cache->dtype != QC_INT8)
    return FAIL(QC_ERROR_INVALID_MODEL, "decoder '%s': its KV cache is %s; qc's runtime keeps float32, float16 or int8",
                qc_model_name(d->prefill.model), qc_dtype_name(cache->dtype));
  d->vocab = logits->shape[2];
  if (d->decode.tokens != 1)
    return FAIL(QC_ERROR_INVALID_MODEL, "decoder '%s': its decode entry takes %lld tokens, not 1",
                qc_model_name(d->decode.model), (long long)d->decode.tokens);
  if ((st = check_shapes(d, &d->prefill, "prefill")) != QC_OK || (st = check_shapes(d, &d->decode, "decode")) != QC_OK)
    return st;
  /* (a GPU decoder's steps read the cache where it is, in CUDA managed memory, instead of a copy a step) */
  d->k_cache = qc_model_alloc(d->prefill.model, qc_tensor_bytes(cache));
  d->v_cache = qc_model_alloc(d->prefill.model, qc_tensor_bytes(cache));
  if (!d->k_cache || !d->v_cache) return FAIL(QC_ERROR_IO, "out of memory for a KV cache of %zu bytes",
                                              2 * qc_tensor_bytes(cache));
  if (d->prefill.scaled) {
    size_t positions = (size_t)(d->layers * d->kv_heads * d->context);
    d->k_scale = qc_model_alloc(d->prefill.model, positions * sizeof(float));
    d->v_scale = qc_model_alloc(d->prefill.model, positions * sizeof(float));
    if (!d->k_scale || !d->v_scale) return FAIL(QC_ERROR_IO, "out of memory for the KV cache's scales");
  }
  return QC_OK;
}

static qc_status finish_open(qc_decoder *d, qc_status st, qc_decoder **decoder) {
  if (st == QC_OK) st = setup(d);
  if (st != QC_OK) {
    qc_decoder_free(d);
    return st;
  }
  *decoder = d;
  return QC_OK;
}

qc_status qc_decoder_open(const char *library_path, const char *weights_path, qc_decoder **decoder) {
  if (!decoder) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_decoder_open: decoder is NULL");
  *decoder = NULL;
  qc_decoder *d = calloc(1, sizeof *d);
  if (!d) return FAIL(QC_ERROR_IO, "out of memory");
  qc_status st = qc_model_open_entry(library_path, NULL, weights_path, &d->prefill.model);
  if (st == QC_OK) st = qc_model_open_entry(library_path, "decode", weights_path, &d->decode.model);
  return finish_open(d, st, decoder);
}

qc_status qc_decoder_load(const qc_model_def *prefill, const qc_model_def *decode, const char *weights_path,
                          qc_decoder **decoder) {
  if (!decoder) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_decoder_load: decoder is NULL");
  *decoder = NULL;
  qc_decoder *d = calloc(1, sizeof *d);
  if (!d) return FAIL(QC_ERROR_IO, "out of memory");
  qc_status st = qc_model_load(prefill, weights_path, &d->prefill.model);
  if (st == QC_OK) st = qc_model_load(decode, weights_path, &d->decode.model);
  return finish_open(d, st, decoder);
}

void qc_decoder_free(qc_decoder *d) {
  if (!d) return;
  void *cache[] = {d->k_cache, d->v_cache, d->k_scale, d->v_scale};
  for (int i = 0; i < 4; i++)
    if (cache[i]) qc_model_free_buffer(d->prefill.model, cache[i]);
  step *steps[] = {&d->prefill, &d->decode};
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < N_OUT; j++)
      if (steps[i]->outputs[j]) qc_model_free_buffer(steps[i]->model, steps[i]->outputs[j]);
    qc_model_free(steps[i]->model);
    free(steps[i]->token_buf);
  }
  free(d);
}

int64_t qc_decoder_context(const qc_decoder *d) { return d ? d->context : -1; }
int64_t qc_decoder_vocab(const qc_decoder *d) { return d ? d->vocab : -1; }
int64_t qc_decoder_position(const qc_decoder *d) { return d ? d->pos : -1; }
void qc_decoder_reset(qc_decoder *d) {
  if (d) d->pos = 0;
}

qc_status qc_decoder_set_num_threads(qc_decoder *d, int threads) {
  if (!d) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_decoder_set_num_threads: decoder is NULL");
  qc_status st = qc_model_set_num_threads(d->prefill.model, threads);
  return st == QC_OK ? qc_model_set_num_threads(d->decode.model, threads) : st;
}

/* One step over n <= s->tokens tokens at d->pos (the rest padded); their keys and values go into the
   cache, the last token's logits into logits (if not NULL). */
static qc_status run_step(qc_decoder *d, step *s, const int64_t *tokens, int64_t n, float *logits) {
  memset(s->token_buf, 0, (size_t)s->tokens * sizeof *s->token_buf);
  memcpy(s->token_buf, tokens, (size_t)n * sizeof *tokens);
  int64_t pos = d->pos;
  const void *inputs[N_IN];
  void *outputs[N_OUT];
  inputs[s->in[TOKENS]] = s->token_buf, inputs[s->in[POS]] = &pos;
  inputs[s->in[K_CACHE]] = d->k_cache, inputs[s->in[V_CACHE]] = d->v_cache;
  if (s->scaled) inputs[s->in[K_SCALE]] = d->k_scale, inputs[s->in[V_SCALE]] = d->v_scale;
  for (int i = 0; i < s->n_out; i++) outputs[s->out[i]] = s->outputs[i];
  qc_status st = qc_model_run(s->model, inputs, outputs);
  if (st != QC_OK) return st;
  /* The new entries into the cache at pos, as runs of rows (on a GPU model's device): values [.., context, head]
     one run of n x head per layer and head, keys [.., head, context] one run of n per dimension, an int8 cache's
     scales one run of n per layer and head. */
  const size_t e = d->elt, lh = (size_t)(d->layers * d->kv_heads), hd = (size_t)d->head, c = (size_t)d->context;
  const size_t t = (size_t)s->tokens, at = (size_t)d->pos, m = (size_t)n;
  if ((st = qc_model_copy_rows(s->model, d->v_cache + at * hd * e, c * hd * e, s->outputs[V_NEW], t * hd * e, m * hd * e,
                               lh)) != QC_OK ||
      (st = qc_model_copy_rows(s->model, d->k_cache + at * e, c * e, s->outputs[K_NEW], t * e, m * e, lh * hd)) != QC_OK)
    return st;
  if (s->scaled &&
      ((st = qc_model_copy_rows(s->model, d->k_scale + at, c * sizeof(float), s->outputs[K_NEW_SCALE],
                                t * sizeof(float), m * sizeof(float), lh)) != QC_OK ||
       (st = qc_model_copy_rows(s->model, d->v_scale + at, c * sizeof(float), s->outputs[V_NEW_SCALE],
                                t * sizeof(float), m * sizeof(float), lh)) != QC_OK))
    return st;
  if (logits)
    memcpy(logits, (const float *)s->outputs[LOGITS] + (size_t)(n - 1) * (size_t)d->vocab,
           (size_t)d->vocab * sizeof(float));
  d->pos += n;
  return QC_OK;
}

qc_status qc_decoder_feed(qc_decoder *d, const int64_t *tokens, int64_t n, float *logits) {
  if (!d || !tokens || n < 1)
    return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_decoder_feed: %s", !d ? "decoder is NULL" : !tokens ? "tokens is NULL"
                                                                                       : "no tokens (n < 1)");
  if (n > d->context - d->pos)
    return FAIL(QC_ERROR_INVALID_ARGUMENT, "the context is full: %lld tokens at position %lld, and the model holds "
                "%lld positions (compile it with a larger --max-context)", (long long)n, (long long)d->pos,
                (long long)d->context);
  for (int64_t i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= d->vocab)
      return FAIL(QC_ERROR_INVALID_ARGUMENT, "token %lld (at index %lld) is outside the vocabulary [0, %lld)",
                  (long long)tokens[i], (long long)i, (long long)d->vocab);
  while (n > 0) {
    step *s = n == 1 ? &d->decode : &d->prefill;
    int64_t take = n < s->tokens ? n : s->tokens;
    qc_status st = run_step(d, s, tokens, take, n == take ? logits : NULL);
    if (st != QC_OK) return st;
    tokens += take, n -= take;
  }
  return QC_OK;
}

/* ---- sampling -------------------------------------------------------------- */

static uint64_t next_random(uint64_t *state) { /* splitmix64 */
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct {
  float p;
  int64_t id;
} candidate;

static int more_likely(const void *a, const void *b) {
  const candidate *x = a, *y = b;
  return x->p < y->p ? 1 : x->p > y->p ? -1 : (x->id > y->id) - (x->id < y->id);
}

int64_t qc_sample(float *logits, int64_t vocab, const qc_sampling *s, uint64_t *rng) {
  int64_t best = 0;
  for (int64_t v = 1; v < vocab; v++)
    if (logits[v] > logits[best]) best = v;
  if (!s || s->temperature <= 0) return best;
  double sum = 0;
  const float top = logits[best];
  for (int64_t v = 0; v < vocab; v++) sum += logits[v] = expf((logits[v] - top) / s->temperature);
  int64_t keep = s->top_k > 0 && s->top_k < vocab ? s->top_k : vocab;
  int nucleus = s->top_p > 0 && s->top_p < 1;
  candidate *c = keep < vocab || nucleus ? malloc((size_t)vocab * sizeof *c) : NULL;
  if (c) { /* ranked; on no memory, sample from them all */
    for (int64_t v = 0; v < vocab; v++) c[v] = (candidate){logits[v], v};
    qsort(c, (size_t)vocab, sizeof *c, more_likely);
    double kept = 0;
    int64_t n = 0;
    while (n < keep && (n == 0 || !nucleus || kept < s->top_p * sum)) kept += c[n++].p;
    double r = (double)(next_random(rng) >> 11) * 0x1.0p-53 * kept;
    int64_t chosen = c[n - 1].id;
    for (int64_t i = 0; i < n; i++)
      if ((r -= c[i].p) < 0) {
        chosen = c[i].id;
        break;
      }
    free(c);
    return chosen;
  }
  double r = (double)(next_random(rng) >> 11) * 0x1.0p-53 * sum;
  for (int64_t v = 0; v < vocab; v++)
    if ((r -= logits[v]) < 0) return v;
  return best;
}

/* ---- the generate loop --------------------------------------------------------- */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

qc_status qc_generate(qc_decoder *d, const int64_t *prompt, int64_t n_prompt, int64_t max_new_tokens,
                      const qc_sampling *sampling, const int64_t *stop, int n_stop, qc_token_callback callback,
                      void *user, int64_t *tokens_out, qc_generate_stats *stats) {
  qc_generate_stats st = {n_prompt, 0, 0, 0, QC_STOP_LENGTH};
  if (stats) *stats = st;
  if (!d) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_generate: decoder is NULL");
  if (max_new_tokens < 0) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_generate: max_new_tokens < 0");
  if (n_stop && !stop) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_generate: stop is NULL");
  if (n_prompt < 1 || !prompt)
    return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_generate: the prompt is empty (give at least one token, e.g. BOS)");
  float *logits = malloc((size_t)d->vocab * sizeof *logits);
  if (!logits) return FAIL(QC_ERROR_IO, "out of memory");
  uint64_t rng = sampling ? sampling->seed : 0;
  qc_decoder_reset(d);
  double t0 = now();
  qc_status status = qc_decoder_feed(d, prompt, n_prompt, logits);
  st.prefill_seconds = now() - t0;
  double t1 = now();
  /* One token chosen per iteration, fed back unless it ends the generation. */
  int64_t token = -1;
  while (status == QC_OK && st.new_tokens < max_new_tokens) {
    if (token >= 0) {
      if (d->pos == d->context) {
        st.stopped = QC_STOP_CONTEXT;
        break;
      }
      status = qc_decoder_feed(d, &token, 1, logits);
      if (status != QC_OK) break;
    }
    token = qc_sample(logits, d->vocab, sampling, &rng);
    if (tokens_out) tokens_out[st.new_tokens] = token;
    st.new_tokens++;
    int stopped = callback && callback(user, token);
    if (stopped) st.stopped = QC_STOP_CALLBACK;
    for (int i = 0; i < n_stop && !stopped; i++)
      if (stop[i] == token) stopped = 1, st.stopped = QC_STOP_TOKEN;
    if (stopped) break;
  }
  st.decode_seconds = now() - t1;
  free(logits);
  if (stats) *stats = st;
  return status;
}
