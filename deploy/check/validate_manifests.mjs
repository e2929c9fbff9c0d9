// Validates deploy/k8s and deploy/kserve offline: every Kubernetes object
// against the API schemas (kubernetes-models), the KServe objects' required
// fields, and the cross-references between them (labels, ports, probes,
// drain timing). Exits 1 with one line per problem.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const deploy = path.resolve(here, "..");
const problems = [];
const fail = (where, msg) => problems.push(`${where}: ${msg}`);

function loadDocs(file) {
  return yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d != null);
}

async function validateK8s(file, doc) {
  const where = `${path.relative(deploy, file)} ${doc.kind}/${doc.metadata?.name}`;
  const group = doc.apiVersion.includes("/") ? doc.apiVersion : `v1`;
  let mod;
  try {
    mod = await import(`kubernetes-models/${group}/${doc.kind}`);
  } catch (e) {
    fail(where, `no schema for ${doc.apiVersion} ${doc.kind}`);
    return;
  }
  const Kind = mod[doc.kind] ?? mod.default;
  try {
    new Kind(doc).validate();
  } catch (e) {
    fail(where, `schema: ${e.message.split("\n").slice(0, 6).join(" | ")}`);
  }
}

function get(obj, dotted) {
  return dotted.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function requireFields(where, doc, fields) {
  for (const f of fields) if (get(doc, f) === undefined) fail(where, `missing required field ${f}`);
}

const k8sDir = path.join(deploy, "k8s");
const objects = {};
const kustomization = yaml.load(fs.readFileSync(path.join(k8sDir, "kustomization.yaml"), "utf8"));
for (const name of fs.readdirSync(k8sDir).filter((f) => f.endsWith(".yaml")).sort()) {
  if (name === "kustomization.yaml") continue;
  if (!kustomization.resources.includes(name)) fail("k8s/kustomization.yaml", `does not list ${name}`);
  for (const doc of loadDocs(path.join(k8sDir, name))) {
    await validateK8s(path.join(k8sDir, name), doc);
    objects[doc.kind] = doc;
  }
}
for (const r of kustomization.resources)
  if (!fs.existsSync(path.join(k8sDir, r))) fail("k8s/kustomization.yaml", `lists missing ${r}`);

// Cross-references between the objects.
const dep = objects.Deployment;
const pod = dep?.spec?.template?.spec;
const ctr = pod?.containers?.[0];
if (!dep || !ctr) fail("k8s", "no Deployment with a container");
else {
  const labels = dep.spec.template.metadata.labels;
  const matches = (sel) => Object.entries(sel).every(([k, v]) => labels[k] === v);
  if (!matches(dep.spec.selector.matchLabels)) fail("k8s/deployment.yaml", "selector does not match pod labels");
  if (objects.Service && !matches(objects.Service.spec.selector)) fail("k8s/service.yaml", "selector matches no pod");
  const pdb = objects.PodDisruptionBudget;
  if (pdb && !matches(pdb.spec.selector.matchLabels)) fail("k8s/pdb.yaml", "selector matches no pod");
  const hpa = objects.HorizontalPodAutoscaler;
  if (hpa && hpa.spec.scaleTargetRef.name !== dep.metadata.name) fail("k8s/hpa.yaml", "targets another Deployment");
  if (hpa && !ctr.resources?.requests?.cpu) fail("k8s/deployment.yaml", "CPU HPA needs a CPU request");
  for (const [probe, want] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"], ["startupProbe", "/readyz"]])
    if (ctr[probe]?.httpGet?.path !== want) fail("k8s/deployment.yaml", `${probe} must GET ${want}`);
  for (const [field, want] of [["runAsNonRoot", true]])
    if (pod.securityContext?.[field] !== want) fail("k8s/deployment.yaml", `pod securityContext.${field} must be ${want}`);
  if (ctr.securityContext?.readOnlyRootFilesystem !== true) fail("k8s/deployment.yaml", "root filesystem must be read-only");
  if (ctr.securityContext?.allowPrivilegeEscalation !== false) fail("k8s/deployment.yaml", "must not allow privilege escalation");
  // The config the pod mounts: its listen port and drain timeout.
  const cm = objects.ConfigMap;
  const conf = cm ? yaml.load(cm.data["fastformerd.yaml"]) : null;
  if (!conf) fail("k8s/configmap.yaml", "no fastformerd.yaml");
  else {
    const port = Number(String(conf.server.listen).split(":").pop());
    if (!ctr.ports.some((p) => p.containerPort === port)) fail("k8s", `containerPort does not match listen port ${port}`);
    if (!String(conf.server.listen).startsWith("0.0.0.0")) fail("k8s/configmap.yaml", "listen must be 0.0.0.0 in a pod");
    const preStop = Number(ctr.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
    const drain = Number(conf.server.drain_timeout_s ?? 0);
    if (!(pod.terminationGracePeriodSeconds > preStop + drain))
      fail("k8s/deployment.yaml", `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} must exceed preStop ${preStop} s + drain ${drain} s`);
    for (const m of conf.models ?? []) if (!m.name || !m.path) fail("k8s/configmap.yaml", "each model needs name and path");
  }
}

// KServe: CRDs have no schema package here, so check the fields KServe requires.
const kserveDir = path.join(deploy, "kserve");
const runtimes = {};
const services = [];
for (const name of fs.readdirSync(kserveDir).filter((f) => f.endsWith(".yaml")).sort()) {
  for (const doc of loadDocs(path.join(kserveDir, name))) {
    const where = `kserve/${name} ${doc.kind}`;
    requireFields(where, doc, ["apiVersion", "kind", "metadata.name"]);
    if (doc.kind === "ClusterServingRuntime" || doc.kind === "ServingRuntime") {
      if (doc.apiVersion !== "serving.kserve.io/v1alpha1") fail(where, `apiVersion ${doc.apiVersion}`);
      requireFields(where, doc, ["spec.supportedModelFormats", "spec.containers"]);
      if (!doc.spec.protocolVersions?.includes("v2")) fail(where, "must declare protocolVersions v2");
      const c = doc.spec.containers?.[0];
      if (c?.name !== "kserve-container") fail(where, "the container must be named kserve-container");
      if (!c?.args?.some((a) => a.includes("/mnt/models"))) fail(where, "must serve /mnt/models");
      runtimes[doc.metadata.name] = doc;
    } else if (doc.kind === "InferenceService") {
      if (doc.apiVersion !== "serving.kserve.io/v1beta1") fail(where, `apiVersion ${doc.apiVersion}`);
      requireFields(where, doc, ["spec.predictor.model.modelFormat.name", "spec.predictor.model.storageUri"]);
      services.push([where, doc]);
    } else fail(where, "unexpected kind");
  }
}
for (const [where, isvc] of services) {
  const m = isvc.spec.predictor.model;
  const rt = runtimes[m.runtime];
  if (!rt) fail(where, `runtime ${m.runtime} is not defined`);
  else if (!rt.spec.supportedModelFormats.some((f) => f.name === m.modelFormat.name))
    fail(where, `runtime ${m.runtime} does not support format ${m.modelFormat.name}`);
  if (m.protocolVersion && m.protocolVersion !== "v2") fail(where, "protocolVersion must be v2");
}

if (problems.length) {
  for (const p of problems) console.error(`invalid: ${p}`);
  process.exit(1);
}
console.log(`manifests valid: ${Object.keys(objects).length} Kubernetes objects, ${Object.keys(runtimes).length} runtime(s), ${services.length} InferenceService(s)`);
