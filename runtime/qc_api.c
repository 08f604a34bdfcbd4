/* qc runtime: the public C API (qc/runtime.h) over the qc_model_def a compiled model exports. */
#define _GNU_SOURCE
#include "qc/runtime.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_support.h"

struct qc_model {
  const qc_model_def *def;
  char device[32]; /* as compiled: "cpu" or "cuda:<chip>" */
  void *state;   /* the model's weights */
  void *library; /* dlopen handle of a shared model, or NULL */
  int threads;
};

const char *qc_status_name(qc_status status) {
  switch (status) {
    case QC_OK: return "ok";
    case QC_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case QC_ERROR_IO: return "i/o error";
    case QC_ERROR_INVALID_MODEL: return "invalid model";
    case QC_ERROR_UNSUPPORTED: return "unsupported";
  }
  return "unknown status";
}

/* Sets the error message (printf-style) and evaluates to status. */
#define FAIL(status, ...) (qc_set_error(__VA_ARGS__), (status))

/* The model's error as this API's.  A model linked with this runtime (a program, a static model)
   shares its error buffer: copying it onto itself would empty it. */
static void keep_model_error(const qc_model_def *def) {
  const char *why = def->last_error();
  if (why != qc_last_error()) qc_set_error("%s", why);
}

/* The device a model was compiled for, from its signature ("device": "cuda:sm_80"), into out. */
static void compiled_device(const qc_model_def *def, char *out, size_t size) {
  const char *at = strstr(def->signature, "\"device\": \"");
  if (!at) {
    snprintf(out, size, "cpu");
    return;
  }
  at += strlen("\"device\": \"");
  snprintf(out, size, "%.*s", (int)strcspn(at, "\""), at);
}

/* Checks ``device`` against the compiled one and selects a CUDA device: QC_OK, or an error. */
static qc_status select_device(const qc_model_def *def, const char *compiled, const char *device) {
  if (!device || !*device) return QC_OK;
  int gpu = !strncmp(compiled, "cuda", 4), ordinal = -1;
  const char *rest = !strncmp(device, "cuda", 4) ? device + 4 : NULL;
  if (rest && *rest == ':') {
    char *end;
    long n = strtol(rest + 1, &end, 10);
    if (end == rest + 1 || *end || n < 0) rest = NULL;
    ordinal = (int)n;
  } else if (rest && *rest) {
    rest = NULL;
  }
  if (!rest && strcmp(device, "cpu"))
    return FAIL(QC_ERROR_INVALID_ARGUMENT, "device '%s': give cpu, cuda or cuda:<ordinal>", device);
  if (gpu != (rest != NULL))
    return FAIL(QC_ERROR_INVALID_ARGUMENT, "model '%s' was compiled for %s, not for %s (qc-compile --target)",
                def->name, compiled, device);
  if (ordinal >= 0 && def->use_device(ordinal)) {
    keep_model_error(def);
    return QC_ERROR_UNSUPPORTED;
  }
  return QC_OK;
}

qc_status qc_model_load(const qc_model_def *def, const char *weights_path, qc_model **model) {
  return qc_model_load_on(def, weights_path, NULL, model);
}

qc_status qc_model_load_on(const qc_model_def *def, const char *weights_path, const char *device, qc_model **model) {
  if (!model) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_model_load: model is NULL");
  *model = NULL;
  if (!def) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_model_load: def is NULL");
  if (def->abi != QC_MODEL_ABI) {
    qc_set_error("model '%s' was compiled for model ABI %d; this runtime (qc %s) reads ABI %d: compile it again",
                 def->name, def->abi, QC_RUNTIME_VERSION, QC_MODEL_ABI);
    return QC_ERROR_INVALID_MODEL;
  }
  qc_model *m = calloc(1, sizeof *m);
  if (!m) return FAIL(QC_ERROR_IO, "out of memory");
  m->def = def;
  compiled_device(def, m->device, sizeof m->device);
  qc_status status = select_device(def, m->device, device);
  if (status == QC_OK) {
    status = (qc_status)def->load(weights_path, &m->state);
    if (status != QC_OK) keep_model_error(def);
  }
  if (status != QC_OK) {
    free(m);
    return status;
  }
  *model = m;
  return QC_OK;
}

const char *qc_model_device(const qc_model *model) { return model ? model->device : ""; }

void *qc_model_alloc(const qc_model *model, size_t bytes) {
  void *p = NULL;
  if (model && model->def->alloc) {
    if (!(p = model->def->alloc(bytes))) qc_set_error("%s", model->def->last_error());
    return p;
  }
  if (posix_memalign(&p, 64, bytes ? bytes : 1)) {
    qc_set_error("out of memory for a buffer of %zu bytes", bytes);
    return NULL;
  }
  return memset(p, 0, bytes);
}

qc_status qc_model_copy_rows(const qc_model *model, void *dst, size_t dst_pitch, const void *src, size_t src_pitch,
                             size_t width, size_t rows) {
  if (!model || !dst || !src) {
    qc_set_error("qc_model_copy_rows: %s is NULL", !model ? "model" : !dst ? "dst" : "src");
    return QC_ERROR_INVALID_ARGUMENT;
  }
  if (model->def->copy_rows) {
    if (!model->def->copy_rows(dst, dst_pitch, src, src_pitch, width, rows)) return QC_OK;
    qc_set_error("%s", model->def->last_error());
    return QC_ERROR_IO;
  }
  for (size_t r = 0; r < rows; ++r) memcpy((char *)dst + r * dst_pitch, (const char *)src + r * src_pitch, width);
  return QC_OK;
}

void qc_model_free_buffer(const qc_model *model, void *buffer) {
  if (model && model->def->free_buffer) model->def->free_buffer(buffer);
  else free(buffer);
}

qc_status qc_model_open(const char *library_path, const char *weights_path, qc_model **model) {
  return qc_model_open_on(library_path, NULL, weights_path, NULL, model);
}

qc_status qc_model_open_entry(const char *library_path, const char *entry_name, const char *weights_path,
                              qc_model **model) {
  return qc_model_open_on(library_path, entry_name, weights_path, NULL, model);
}

qc_status qc_model_open_on(const char *library_path, const char *entry_name, const char *weights_path,
                           const char *device, qc_model **model) {
  if (!model) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_model_open: model is NULL");
  *model = NULL;
  if (!library_path) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_model_open: library_path is NULL");
  int main_entry = !entry_name || !strcmp(entry_name, "main");
  char symbol[256];
  snprintf(symbol, sizeof symbol, main_entry ? "%s" : "%s_%s", QC_MODEL_ENTRY, entry_name);
  void *lib = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) return FAIL(QC_ERROR_IO, "cannot load model library: %s", dlerror());
  const qc_model_def *(*entry)(void) = (const qc_model_def *(*)(void))dlsym(lib, symbol);
  if (!entry) {
    int older = dlsym(lib, "qc_model_signature") != NULL, model_lib = dlsym(lib, QC_MODEL_ENTRY) != NULL;
    dlclose(lib);
    if (model_lib)
      return FAIL(QC_ERROR_INVALID_MODEL, "model '%s' has no entry point '%s'%s", library_path, entry_name,
                  strcmp(entry_name, "decode") ? "" : " (it is not a decoder: compile one with qc-compile --max-context)");
    return FAIL(QC_ERROR_INVALID_MODEL,
                older ? "'%s' was compiled by an older qc (before the model ABI): compile it again"
                      : "'%s' is not a model qc compiled: it has no " QC_MODEL_ENTRY, library_path);
  }
  qc_status status = qc_model_load_on(entry(), weights_path, device, model);
  if (status != QC_OK) {
    dlclose(lib);
    return status;
  }
  (*model)->library = lib;
  return QC_OK;
}

void qc_model_free(qc_model *model) {
  if (!model) return;
  model->def->free(model->state);
  if (model->library) dlclose(model->library);
  free(model);
}

const char *qc_model_name(const qc_model *model) { return model ? model->def->name : NULL; }
int qc_model_num_inputs(const qc_model *model) { return model ? model->def->num_inputs : -1; }
int qc_model_num_outputs(const qc_model *model) { return model ? model->def->num_outputs : -1; }
const char *qc_model_signature(const qc_model *model) { return model ? model->def->signature : NULL; }

static const qc_tensor_info *tensor_at(const qc_model *model, int index, int output) {
  if (!model) {
    qc_set_error("the model handle is NULL");
    return NULL;
  }
  int count = output ? model->def->num_outputs : model->def->num_inputs;
  if (index < 0 || index >= count) {
    qc_set_error("model '%s' has %d %s%s; there is no index %d", model->def->name, count,
                 output ? "output" : "input", count == 1 ? "" : "s", index);
    return NULL;
  }
  return output ? &model->def->outputs[index] : &model->def->inputs[index];
}

const qc_tensor_info *qc_model_input(const qc_model *model, int index) { return tensor_at(model, index, 0); }
const qc_tensor_info *qc_model_output(const qc_model *model, int index) { return tensor_at(model, index, 1); }

static int index_of(const qc_model *model, const char *name, int output) {
  if (!model || !name) {
    qc_set_error("qc_model_%s_index: %s is NULL", output ? "output" : "input", model ? "name" : "model");
    return -1;
  }
  int count = output ? model->def->num_outputs : model->def->num_inputs;
  const qc_tensor_info *tensors = output ? model->def->outputs : model->def->inputs;
  char names[768] = "";
  size_t used = 0;
  for (int i = 0; i < count; i++) {
    if (strcmp(tensors[i].name, name) == 0) return i;
    used += (size_t)snprintf(names + used, used < sizeof names ? sizeof names - used : 0, "%s'%s'", i ? ", " : "",
                             tensors[i].name);
  }
  qc_set_error("model '%s' has no %s named '%s'; its %ss: %s", model->def->name, output ? "output" : "input", name,
               output ? "output" : "input", names);
  return -1;
}

int qc_model_input_index(const qc_model *model, const char *name) { return index_of(model, name, 0); }
int qc_model_output_index(const qc_model *model, const char *name) { return index_of(model, name, 1); }

size_t qc_dtype_size(qc_dtype dtype) {
  static const size_t sizes[] = {4, 8, 2, 8, 4, 1, 1, 1};
  return (unsigned)dtype < sizeof sizes / sizeof *sizes ? sizes[dtype] : 0;
}

const char *qc_dtype_name(qc_dtype dtype) {
  static const char *names[] = {"float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool"};
  return (unsigned)dtype < sizeof names / sizeof *names ? names[dtype] : "unknown";
}

size_t qc_tensor_elements(const qc_tensor_info *tensor) {
  size_t n = 1;
  for (int i = 0; tensor && i < tensor->rank; i++) n *= (size_t)tensor->shape[i];
  return tensor ? n : 0;
}

size_t qc_tensor_bytes(const qc_tensor_info *tensor) {
  return tensor ? qc_tensor_elements(tensor) * qc_dtype_size(tensor->dtype) : 0;
}

int qc_max_threads(void) { return qc_num_threads(); }

qc_status qc_model_set_num_threads(qc_model *model, int threads) {
  if (!model) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_model_set_num_threads: model is NULL");
  int most = model->def->max_threads();
  if (threads < 0 || threads > most) {
    qc_set_error("model '%s': %d threads asked, the pool has %d (QC_NUM_THREADS; 0 means all)", model->def->name,
                 threads, most);
    return QC_ERROR_INVALID_ARGUMENT;
  }
  model->threads = threads;
  model->def->set_threads(model->state, threads);
  return QC_OK;
}

int qc_model_num_threads(const qc_model *model) {
  if (!model) return -1;
  return model->threads ? model->threads : model->def->max_threads();
}

qc_status qc_model_run(qc_model *model, const void *const *inputs, void *const *outputs) {
  if (!model) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_model_run: model is NULL");
  if ((!inputs && model->def->num_inputs) || (!outputs && model->def->num_outputs))
    return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_model_run: %s is NULL", !outputs ? "outputs" : "inputs");
  for (int i = 0; i < model->def->num_inputs; i++)
    if (!inputs[i]) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_model_run: the buffer of input '%s' is NULL",
                                model->def->inputs[i].name);
  for (int i = 0; i < model->def->num_outputs; i++)
    if (!outputs[i]) return FAIL(QC_ERROR_INVALID_ARGUMENT, "qc_model_run: the buffer of output '%s' is NULL",
                                 model->def->outputs[i].name);
  if (model->def->run(model->state, inputs, outputs) != 0) {
    keep_model_error(model->def);
    return QC_ERROR_INVALID_ARGUMENT;
  }
  return QC_OK;
}
