// The official OpenAI Node client (npm `openai`) against fastformerd's
// POST /v1/embeddings: the same calls a RAG framework makes. Usage:
//   node openai_client.mjs BASE_URL API_KEY MODEL
// Prints one JSON object with what the client returned (the test compares it
// with the daemon's own embed route).
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const out = {};

// The client's default: it asks for base64 and decodes it to floats.
const one = await client.embeddings.create({ model, input: "A wonderful film" });
out.default_one = { object: one.object, model: one.model, usage: one.usage,
                    data: one.data.map((d) => ({ object: d.object, index: d.index, embedding: Array.from(d.embedding) })) };

const many = await client.embeddings.create({ model, input: ["A wonderful film", "Dull and far too long"],
                                              encoding_format: "float" });
out.float_many = { usage: many.usage, data: many.data.map((d) => ({ index: d.index, embedding: d.embedding })) };

const ids = await client.embeddings.create({ model, input: [[5, 17, 42], [7]], encoding_format: "float" });
out.ids = { usage: ids.usage, data: ids.data.map((d) => d.embedding) };

for (const [name, req] of [["unknown_model", { model: "no-such-model", input: "x" }],
                           ["bad_input", { model, input: [1, "a"] }]]) {
  try {
    await client.embeddings.create(req);
    out[name] = { error: null };
  } catch (e) {
    out[name] = { status: e.status, type: e.type, code: e.code, param: e.param, message: e.message };
  }
}
// models.list() and models.retrieve(): OpenAI's model objects.
const listed = [];
for await (const m of client.models.list()) listed.push({ id: m.id, object: m.object, owned_by: m.owned_by, created: m.created });
out.models_list = listed;
const got = await client.models.retrieve(model);
out.models_retrieve = { id: got.id, object: got.object, owned_by: got.owned_by, created: got.created };
try {
  await client.models.retrieve("no-such-model");
  out.models_retrieve_unknown = { error: null };
} catch (e) {
  out.models_retrieve_unknown = { status: e.status };
}

const bad = new OpenAI({ baseURL, apiKey: "wrong-key", maxRetries: 0 });
try {
  await bad.embeddings.create({ model, input: "x" });
  out.wrong_key = { error: null };
} catch (e) {
  out.wrong_key = { status: e.status, message: e.message };
}
console.log(JSON.stringify(out));
