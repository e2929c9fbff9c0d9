// The official Hugging Face client (npm `@huggingface/inference`) pointed at
// fastformerd's /tei/{name} endpoint URLs, as a user points it at a TEI or
// Inference Endpoints URL. Usage:
//   node hf_client.mjs BASE_URL API_KEY      (BASE_URL: http://host:port/tei)
// Prints one JSON object with what the client returned (the test compares it
// with the daemon's own v1 routes).
import { InferenceClient } from "@huggingface/inference";

const [base, apiKey] = process.argv.slice(2);
const client = new InferenceClient(apiKey);
const out = {};

out.classification = await client.endpoint(`${base}/classifier`)
  .textClassification({ inputs: "oil prices rise" });
out.features = await client.endpoint(`${base}/newsrec`)
  .featureExtraction({ inputs: ["oil prices rise", "the team won the match"] });
try {
  await client.endpoint(`${base}/no-such-model`).featureExtraction({ inputs: "x" });
  out.unknown = { error: null };
} catch (e) {
  out.unknown = { status: e.httpResponse?.status ?? e.status, message: e.message };
}
console.log(JSON.stringify(out));
