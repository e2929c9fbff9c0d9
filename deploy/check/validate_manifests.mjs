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

// A kustomization rendered as kubectl apply -k would: its resources (files,
// and directories that are kustomizations themselves), then its patches:
// JSON 6902 operations (add, replace, remove) on a target by kind and name,
// and strategic-merge "$patch: delete" of a whole object. Labels are not
// applied (the checks below do not need them).
function pointer(doc, ptr) {
  const keys = ptr.split("/").slice(1).map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
  const last = keys.pop();
  let parent = doc;
  for (const k of keys) {
    if (parent[k] === undefined) return [null, last];
    parent = parent[k];
  }
  return [parent, last];
}

function applyOp(where, doc, op) {
  const [parent, key] = pointer(doc, op.path);
  if (parent == null) return fail(where, `patch path ${op.path} does not exist`);
  if (op.op === "remove") {
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete parent[key];
  } else if (op.op === "add" && Array.isArray(parent)) {
    if (key === "-") parent.push(op.value);
    else parent.splice(Number(key), 0, op.value);
  } else if (op.op === "add" || op.op === "replace") {
    if (op.op === "replace" && parent[key] === undefined) fail(where, `patch path ${op.path} does not exist`);
    parent[key] = op.value;
  } else fail(where, `unsupported patch op ${op.op}`);
}

function renderKustomization(dir) {
  const rel = path.relative(deploy, dir);
  const kust = yaml.load(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"));
  let docs = [];
  for (const r of kust.resources ?? []) {
    const p = path.join(dir, r);
    if (!fs.existsSync(p)) fail(`${rel}/kustomization.yaml`, `lists missing ${r}`);
    else if (fs.statSync(p).isDirectory()) docs.push(...renderKustomization(p));
    else docs.push(...loadDocs(p).map((d) => ({ file: path.join(rel, r), doc: d })));
  }
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort())
    if (name !== "kustomization.yaml" && !(kust.resources ?? []).includes(name))
      fail(`${rel}/kustomization.yaml`, `does not list ${name}`);
  for (const p of kust.patches ?? []) {
    const body = yaml.load(p.patch);
    if (!Array.isArray(body)) {
      if (body?.$patch !== "delete") { fail(`${rel}/kustomization.yaml`, "only $patch: delete is supported as a strategic-merge patch"); continue; }
      const n = docs.length;
      docs = docs.filter(({ doc }) => !(doc.kind === body.kind && doc.metadata?.name === body.metadata?.name));
      if (docs.length === n) fail(`${rel}/kustomization.yaml`, `$patch: delete matches no ${body.kind}/${body.metadata?.name}`);
      continue;
    }
    const targets = docs.filter(({ doc }) => doc.kind === p.target?.kind && doc.metadata?.name === p.target?.name);
    if (!targets.length) fail(`${rel}/kustomization.yaml`, `patch target ${p.target?.kind}/${p.target?.name} not found`);
    for (const t of targets) {
      t.doc = structuredClone(t.doc);
      t.file = `${rel}/kustomization.yaml (patched ${t.file})`;
      for (const op of body) applyOp(t.file, t.doc, op);
    }
  }
  return docs;
}

// Each variant: its objects by kind, and the checks that hold for all.
async function checkVariant(dirName) {
  const objects = {};
  for (const { file, doc } of renderKustomization(path.join(deploy, dirName))) {
    await validateK8s(path.join(deploy, file), doc);
    objects[doc.kind] = doc;
  }
  checkCrossReferences(dirName, objects);
  return objects;
}

function checkCrossReferences(variant, objects) {
const dep = objects.Deployment;
const pod = dep?.spec?.template?.spec;
const ctr = pod?.containers?.[0];
if (!dep || !ctr) fail(variant, "no Deployment with a container");
else {
  const labels = dep.spec.template.metadata.labels;
  const matches = (sel) => Object.entries(sel).every(([k, v]) => labels[k] === v);
  if (!matches(dep.spec.selector.matchLabels)) fail(variant + ": k8s/deployment.yaml", "selector does not match pod labels");
  if (objects.Service && !matches(objects.Service.spec.selector)) fail(variant + ": k8s/service.yaml", "selector matches no pod");
  const pdb = objects.PodDisruptionBudget;
  if (pdb && !matches(pdb.spec.selector.matchLabels)) fail(variant + ": k8s/pdb.yaml", "selector matches no pod");
  const hpa = objects.HorizontalPodAutoscaler;
  if (hpa && hpa.spec.scaleTargetRef.name !== dep.metadata.name) fail(variant + ": k8s/hpa.yaml", "targets another Deployment");
  if (hpa && !ctr.resources?.requests?.cpu) fail(variant + ": k8s/deployment.yaml", "CPU HPA needs a CPU request");
  for (const [probe, want] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"], ["startupProbe", "/readyz"]])
    if (ctr[probe]?.httpGet?.path !== want) fail(variant + ": k8s/deployment.yaml", `${probe} must GET ${want}`);
  for (const [field, want] of [["runAsNonRoot", true]])
    if (pod.securityContext?.[field] !== want) fail(variant + ": k8s/deployment.yaml", `pod securityContext.${field} must be ${want}`);
  if (ctr.securityContext?.readOnlyRootFilesystem !== true) fail(variant + ": k8s/deployment.yaml", "root filesystem must be read-only");
  if (ctr.securityContext?.allowPrivilegeEscalation !== false) fail(variant + ": k8s/deployment.yaml", "must not allow privilege escalation");
  // The config the pod mounts: its listen port and drain timeout.
  const cm = objects.ConfigMap;
  const conf = cm ? yaml.load(cm.data["fastformerd.yaml"]) : null;
  if (!conf) fail(variant + ": k8s/configmap.yaml", "no fastformerd.yaml");
  else {
    const port = Number(String(conf.server.listen).split(":").pop());
    if (!ctr.ports.some((p) => p.containerPort === port)) fail(variant, `containerPort does not match listen port ${port}`);
    if (!String(conf.server.listen).startsWith("0.0.0.0")) fail(variant + ": k8s/configmap.yaml", "listen must be 0.0.0.0 in a pod");
    const preStop = Number(ctr.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
    const drain = Number(conf.server.drain_timeout_s ?? 0);
    if (!(pod.terminationGracePeriodSeconds > preStop + drain))
      fail(variant + ": k8s/deployment.yaml", `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} must exceed preStop ${preStop} s + drain ${drain} s`);
    for (const m of conf.models ?? []) if (!m.name || !m.path) fail(variant + ": k8s/configmap.yaml", "each model needs name and path");
    checkNewsStores(variant, dep, pod, ctr, conf);
  }
}
}

// Where the news catalogs live: with several replicas every recommender
// (a model with a news_catalog) must share one PostgreSQL store, whose
// connection comes from a Secret; a SQLite state directory needs a
// persistent volume mounted there and a single replica.
function checkNewsStores(variant, dep, pod, ctr, conf) {
  if (!conf) return;
  const recommenders = (conf.models ?? []).filter((m) => m.news_catalog);
  const shared = recommenders.filter((m) => String(m.news_store ?? "").startsWith("postgresql://"));
  if (dep.spec.replicas > 1 && shared.length !== recommenders.length)
    fail(variant, `${dep.spec.replicas} replicas: every recommender needs news_store: "postgresql://..." (one catalog for all)`);
  if (shared.length) {
    for (const v of ["PGHOST", "PGDATABASE", "PGUSER", "PGPASSWORD"]) {
      const e = (ctr.env ?? []).find((x) => x.name === v);
      if (!e?.valueFrom?.secretKeyRef?.name) fail(variant, `news_store postgresql: ${v} must come from a Secret`);
    }
  }
  if (recommenders.length > shared.length) {
    const dir = conf.server?.state_dir;
    if (!dir) fail(variant, "a SQLite news store needs server.state_dir");
    const mount = (ctr.volumeMounts ?? []).find((m) => m.mountPath === dir);
    const vol = mount && (pod.volumes ?? []).find((x) => x.name === mount.name);
    if (!vol?.persistentVolumeClaim) fail(variant, `state_dir ${dir} must be a persistent volume`);
    if (dep.spec.replicas !== 1 || dep.spec.strategy?.type !== "Recreate")
      fail(variant, "a SQLite state directory needs 1 replica and strategy Recreate");
  }
}

const variants = {};
for (const v of ["k8s", "k8s-single-replica"]) variants[v] = await checkVariant(v);

// KServe: CRDs have no schema package here, so check the fields KServe requires.
const kserveDir = path.join(deploy, "kserve");
const runtimes = {};
const services = [];
const configMaps = {};
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
    } else if (doc.kind === "ConfigMap") {
      await validateK8s(path.join(kserveDir, name), doc);
      configMaps[doc.metadata.name] = doc;
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
  // A config of its own (args --config FILE): a ConfigMap mounted there,
  // serving /mnt/models, and its news catalogs where its replicas can share them.
  const at = (m.args ?? []).indexOf("--config");
  if (at >= 0) {
    const file = m.args[at + 1] ?? "";
    const mount = (m.volumeMounts ?? []).find((v) => file.startsWith(v.mountPath + "/"));
    const vol = mount && (isvc.spec.predictor.volumes ?? []).find((v) => v.name === mount.name);
    const cm = vol?.configMap && configMaps[vol.configMap.name];
    const conf = cm && yaml.load(cm.data?.[file.slice(mount.mountPath.length + 1)] ?? "null");
    if (!conf) { fail(where, `--config ${file}: no ConfigMap in deploy/kserve mounted there`); continue; }
    if (!(conf.models ?? []).some((x) => x.path === "/mnt/models")) fail(where, "its config serves no model at /mnt/models");
    const pod = { volumes: isvc.spec.predictor.volumes };
    const dep = { spec: { replicas: isvc.spec.predictor.maxReplicas ?? isvc.spec.predictor.minReplicas ?? 1,
                          strategy: { type: "Recreate" } } };
    checkNewsStores(where, dep, pod, m, conf);
  }
}

if (problems.length) {
  for (const p of problems) console.error(`invalid: ${p}`);
  process.exit(1);
}
console.log(`manifests valid: ${Object.entries(variants).map(([v, o]) => `${v} ${Object.keys(o).length}`).join(", ")} Kubernetes objects, ${Object.keys(runtimes).length} runtime(s), ${services.length} InferenceService(s)`);
