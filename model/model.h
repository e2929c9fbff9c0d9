/* model: a model directory (config.json + model.safetensors + vocab.txt)
 * loaded, validated and bound to the Fastformer engine, plus the task heads:
 * classification (dense_linear + softmax) and news recommendation (news
 * encoder, user encoder over clicked-news vectors, dot-product score).
 *
 * Tensor names are the official PyTorch state_dict names:
 *   classifier:  word_embedding.weight, fastformer_model.*, dense_linear.{weight,bias}
 *   recommender: news_encoder.word_embedding.weight, news_encoder.fastformer_model.*,
 *                user_encoder.fastformer_model.*
 * The word embedding table may be stored in int8 with its NAME_scale tensor,
 * and optionally factored through a NAME_projection tensor (safetensors.h,
 * "int8 embeddings"); it is then read as int8, row by row, and never
 * expanded to F32. No other tensor may be I8.
 * A loaded model is read-only: any number of threads may use it at once, each
 * with its own workspace. */
#ifndef FF_MODEL_H
#define FF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "config.h"
#include "embedding.h"
#include "fastformer.h"
#include "mapped_file.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "vocab.h"

typedef struct {
    model_config config;
    vocab *vocab;
    tokenizer *tokenizer;

    embedding_table word_embedding;  /* (V, D), F32 or int8 (factored or not) */
    fastformer_encoder encoder;      /* classifier text encoder / recommender news encoder */
    fastformer_encoder user_encoder; /* recommender only (zeroed otherwise) */
    const float *classifier_weight;  /* (C, D) dense_linear.weight; classifier only */
    const float *classifier_bias;    /* (C) */

    char weights_sha256[65]; /* hex digest of model.safetensors, taken at load */
    size_t weights_bytes;    /* size of model.safetensors */
    size_t f32_bytes; /* bytes of F32 parameters the engine reads (int8 scales, projection too) */
    size_t i8_bytes;  /* bytes of int8 parameters the engine reads (0, V*D, or V*K) */
    /* Bytes of model.safetensors still mapped: weights_bytes when some aligned
     * F32 tensor is read in place, 0 when every tensor was converted (F16,
     * BF16, misaligned F32) and the mapping was released after load. An int8
     * table is read in place when the mapping stays, and copied otherwise. */
    size_t mapped_bytes;
    /* Bytes the model owns for its weights, as requested from malloc: the F32
     * buffer (converted tensors, int8 scales and a factored table's
     * projection, the concatenated query|key projections) plus the copy of
     * an int8 table; 0 when none. */
    size_t owned_bytes;
    /* The GEMM kernel path the encoders run (gemm.h): the environment's
     * FASTFORMER_KERNELS (plain, avx2 or avx512) when set, else the fastest
     * this CPU supports; and the bytes of the encoders' weights packed for it
     * at load (fastformer_pack), owned by the model. */
    gemm_path kernel_path;
    size_t packed_bytes;

    /* private: the mapping (NULL once released) and owned copies */
    mapped_file file;
    float *owned;
    int8_t *owned_i8;
    fastformer_layer *owned_layers;
    float *packed;
} model;

/* Loads and validates the model directory `dir`. Returns a new model in *out
 * (free with model_free) or -1 with a message that names the file and the
 * tensor or key, e.g. "DIR/model.safetensors: tensor
 * 'fastformer_model.encoders.1.attention.self.key.weight' has shape [64,32],
 * expected [64,64]", or the environment ("FASTFORMER_KERNELS=avx512: this CPU
 * cannot run the avx512 kernels"). Never crashes or reads out of bounds on a
 * bad file. */
FF_MUST_CHECK int model_load(const char *dir, model **out, char *err, size_t err_cap);
void model_free(model *m);

/* A workspace that serves both of the model's encoders. NULL when out of memory. */
fastformer_workspace *model_workspace_new(const model *m, int max_tokens, int max_seqs);
/* The same for encodes on a team of up to n_lanes lanes (parallel.h); the
 * caller lends it the team with fastformer_workspace_set_team. */
fastformer_workspace *model_workspace_new_lanes(const model *m, int max_tokens, int max_seqs,
                                                int n_lanes);
size_t model_workspace_bytes_lanes(const model *m, int max_tokens, int max_seqs, int n_lanes);
/* Bytes model_workspace_new(m, max_tokens, max_seqs) allocates (for the
 * daemon's memory estimate); SIZE_MAX when the sizes overflow. */
size_t model_workspace_bytes(const model *m, int max_tokens, int max_seqs);

/* Maximum tokens of one text (the text/news encoder's max_position_embeddings). */
int model_max_tokens(const model *m);

/* The model's capabilities (model_task_has_classifier / _has_user_encoder of
 * its task): model_classify needs a classifier, model_encode_users and
 * model_score a user encoder. Any thread. */
bool model_has_classifier(const model *m);
bool model_has_user_encoder(const model *m);

/* Tokenizes one text with the model's tokenizer, truncating at
 * model_max_tokens() (ids must hold that many). See tokenizer_encode. */
FF_MUST_CHECK int model_tokenize(const model *m, const char *text, size_t text_bytes, int32_t *ids,
                                 size_t *n_ids, bool *truncated, char *err, size_t err_cap);

/* Encodes n sequences of ids (ids[i] has n_ids[i] entries, 0 = padding, each
 * id < vocab_size, each n_ids[i] <= model_max_tokens) through the text/news
 * encoder into pooled (n, D). Trailing padding is dropped before compute,
 * which does not change the result. Needs sum of lengths <= ws->max_tokens
 * and n <= ws->max_seqs (asserted). Allocates nothing. */
void model_encode_ids(const model *m, fastformer_workspace *ws, const int32_t *const *ids,
                      const int32_t *n_ids, int n, float *pooled);

/* Classifier head for n pooled vectors: logits (n, C) and softmax
 * probabilities (n, C). Either output may be NULL. */
void model_classify(const model *m, const float *pooled, int n, float *logits, float *probs);

/* Recommender: user vectors for n_users histories. History u is rows
 * [hist_start[u], hist_start[u+1]) of news_vecs (D floats each), oldest
 * first; only the last max_history are used. An empty history gives the zero
 * vector. Needs the kept rows <= ws->max_tokens, n_users <= ws->max_seqs. */
void model_encode_users(const model *m, fastformer_workspace *ws, const float *news_vecs,
                        const int32_t *hist_start, int n_users, float *user_vecs);

/* scores[i] = dot(user_vec, cand_vecs[i]) for n candidates. */
void model_score(const model *m, const float *user_vec, const float *cand_vecs, int n,
                 float *scores);

#endif
