"""Check everything under deploy/ without a cluster (run by scripts/validate-deploy).

- deploy/k8s and deploy/crds: every YAML document validates against the Kubernetes OpenAPI
  schemas bundled by kubernetes-validate, strict (unknown fields are errors), for Kubernetes 1.31
  and the newest version the package bundles; a kind with no schema is an error.
- kustomization.yaml files: parse, name only resources that exist, deploy/k8s lists every
  manifest beside it (except *.example.yaml, applied by hand), and `kubectl kustomize` builds
  them when kubectl is installed.
- deploy/crds: at least one CustomResourceDefinition, each version's openAPIV3Schema a valid
  schema.
- deploy/examples: every document validates against the openAPIV3Schema of its CRD (matched by
  group, version and kind), with Kubernetes' rules: fields a schema does not declare are errors
  unless it says x-kubernetes-preserve-unknown-fields, and `nullable` allows null.
- deploy/grafana/*.json: every metric name in every PromQL `expr` is one the Rust sources under
  crates/ and src/ describe (a histogram as NAME_bucket, NAME_sum or NAME_count).

One line per file checked; exit status 1 when anything fails.
"""

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

K8S_MIN = "1.31"
EXAMPLE_SUFFIX = ".example.yaml"


def yaml_files(d):
    return sorted(p for p in d.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def name_of(doc):
    return f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"


# ---- Kubernetes manifests -------------------------------------------------------------------


def check_k8s_file(path, versions):
    """The document names, and the errors (kubernetes-validate reports the first per document
    and version; the same error under several versions is listed once)."""
    errors, names = {}, []
    for doc in load_docs(path):
        if not isinstance(doc, dict) or not {"apiVersion", "kind", "metadata"} <= doc.keys():
            errors.setdefault("a document without apiVersion, kind and metadata", [])
            continue
        names.append(name_of(doc))
        for v in versions:
            try:
                kubernetes_validate.validate(doc, v, strict=True)
            except kubernetes_validate.ValidationError as e:
                where = ".".join(str(p) for p in e.path) or "(top)"
                errors.setdefault(f"{name_of(doc)}: {where}: {e.message}", []).append(v)
            except kubernetes_validate.SchemaNotFoundError:
                errors.setdefault(f"{name_of(doc)}: no Kubernetes schema for {doc['apiVersion']}", [])
                break
    return names, [f"{e} (Kubernetes {', '.join(vs)})" if vs else e for e, vs in errors.items()]


def check_kustomization(path, root):
    doc = yaml.safe_load(path.read_text()) or {}
    errors = []
    resources = doc.get("resources") or []
    for r in resources:
        target = path.parent / r
        if target.is_dir():
            if not (target / "kustomization.yaml").is_file():
                errors.append(f"{r}: a directory without kustomization.yaml")
        elif not target.is_file():
            errors.append(f"{r}: missing")
    if path.parent == root / "deploy" / "k8s":
        listed = {Path(r).name for r in resources}
        for p in sorted(path.parent.glob("*.yaml")):
            if p.name != "kustomization.yaml" and not p.name.endswith(EXAMPLE_SUFFIX) and p.name not in listed:
                errors.append(f"{p.name} is not listed in resources")
    built = "build not checked" + ("" if shutil.which("kubectl") else ": no kubectl")
    if shutil.which("kubectl") and not errors:
        run = subprocess.run(["kubectl", "kustomize", str(path.parent)], capture_output=True, text=True)
        if run.returncode != 0:
            built = "kubectl kustomize fails"
            errors.append(f"kubectl kustomize: {' '.join(run.stderr.split())[-400:]}")
        else:
            built = f"kubectl kustomize builds {len([d for d in yaml.safe_load_all(run.stdout) if d])} objects"
    return f"kustomization, {len(resources)} resources, {built}", errors


# ---- CRDs and examples ----------------------------------------------------------------------


def crds_in(crd_dir):
    out = []
    for path in yaml_files(crd_dir):
        if path.name == "kustomization.yaml":
            continue
        try:
            docs = load_docs(path)
        except yaml.YAMLError:
            continue  # reported by the Kubernetes check
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                out.append((path, doc))
    return out


def kubernetes_rules(schema):
    """The schema as Kubernetes applies it: undeclared fields are errors (Kubernetes prunes or,
    with strict field validation, rejects them) unless preserve-unknown-fields; nullable allows
    null. apiVersion, kind and metadata are implicit at the top."""
    s = copy.deepcopy(schema)
    top = s.setdefault("properties", {})
    top.setdefault("apiVersion", {"type": "string"})
    top.setdefault("kind", {"type": "string"})
    top.setdefault("metadata", {"type": "object"})

    def walk(node):
        # Declared fields only: allOf/anyOf/oneOf/not branches may name a subset of them.
        if not isinstance(node, dict):
            return
        for sub in (node.get("properties") or {}).values():
            walk(sub)
        items = node.get("items")
        for sub in items if isinstance(items, list) else [items]:
            walk(sub)
        walk(node.get("additionalProperties"))
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False

    walk(s)
    return s


def crd_schemas(crds):
    """(group, version, kind) → openAPIV3Schema, and the errors of invalid schemas."""
    out, errors = {}, []
    for path, crd in crds:
        spec = crd.get("spec") or {}
        for ver in spec.get("versions") or []:
            schema = ((ver.get("schema") or {}).get("openAPIV3Schema")) or {}
            try:
                jsonschema.Draft4Validator.check_schema(schema)
            except jsonschema.SchemaError as e:
                errors.append(f"{path}: {ver.get('name')}: invalid openAPIV3Schema: {e.message}")
                continue
            out[(spec.get("group"), ver.get("name"), (spec.get("names") or {}).get("kind"))] = schema
    return out, errors


def check_example(path, schemas):
    names, errors = [], []
    for doc in load_docs(path):
        if not isinstance(doc, dict):
            errors.append("a document that is not a mapping")
            continue
        names.append(name_of(doc))
        group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
        schema = schemas.get((group, version, doc.get("kind")))
        if schema is None:
            errors.append(f"{name_of(doc)}: no CRD in deploy/crds defines {doc.get('kind')} in {doc.get('apiVersion')}")
            continue
        validator = jsonschema.Draft4Validator(kubernetes_rules(schema))
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
            where = ".".join(str(p) for p in e.path) or "(top)"
            errors.append(f"{name_of(doc)}: {where}: {e.message}")
    return names, errors


# ---- Grafana dashboard ----------------------------------------------------------------------

DESCRIBE = re.compile(r'\(\s*"(splai_[a-z0-9_]+)"\s*,\s*"(counter|histogram|gauge)"')
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
                "and", "or", "unless", "inf", "nan"}


def registered_series(root):
    """Exported names (a histogram's as its three series) → the described name, from every
    `describe` tuple in crates/ and src/ (test modules left out)."""
    names = {}
    for base in ("crates", "src"):
        for rs in sorted((root / base).rglob("*.rs")):
            text = rs.read_text().split("#[cfg(test)]")[0]
            for name, kind in DESCRIBE.findall(text):
                suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
                for s in suffixes:
                    names[name + s] = name
    return names


def promql_metrics(expr):
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges, subqueries
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)  # Grafana variables
    found = []
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        if m.start() > 0 and (s[m.start() - 1].isdigit() or s[m.start() - 1] == "."):
            continue  # 1e3, 0.5, 5m
        if s[m.end():].lstrip().startswith("(") or m.group(0) in PROMQL_WORDS:
            continue  # a function or an aggregation
        found.append(m.group(0))
    return found


def exprs_in(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                yield v
            else:
                yield from exprs_in(v)
    elif isinstance(node, list):
        for v in node:
            yield from exprs_in(v)


def check_dashboard(path, registered):
    errors = []
    try:
        dash = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        return "", [f"not JSON: {e}"]
    exprs = list(exprs_in(dash))
    used = set()
    for expr in exprs:
        metrics = promql_metrics(expr)
        if not metrics:
            errors.append(f"no metric in `{expr}`")
        for m in metrics:
            used.add(m)
            if m not in registered:
                errors.append(f"unknown metric `{m}` in `{expr}`")
    if not exprs:
        errors.append("no PromQL expr at all")
    return f"{len(exprs)} queries over {len({registered.get(m, m) for m in used})} metrics", errors


# ---- main -----------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="repository root (default: this script's)")
    args = ap.parse_args()
    root = args.root.resolve()
    deploy = root / "deploy"
    newest = ".".join(kubernetes_validate.latest_version().split(".")[:2])
    versions = [K8S_MIN] if newest == K8S_MIN else [K8S_MIN, newest]
    failed = checked = 0

    def report(path, what, errors):
        nonlocal failed, checked
        checked += 1
        rel = path.relative_to(root)
        if errors:
            failed += 1
            print(f"FAIL {rel}: {what}")
            for e in errors:
                print(f"     - {e}")
        else:
            print(f"ok   {rel}: {what}")

    crds = crds_in(deploy / "crds")
    if not crds:
        print(f"FAIL {(deploy / 'crds').relative_to(root)}: no CustomResourceDefinition yet "
              "(generate splaijobs/splaiworkers/splaipolicies.splai.io.yaml there first)")
        failed += 1

    vs = ", ".join(versions)
    for d in ("k8s", "crds"):
        for path in yaml_files(deploy / d):
            try:
                if path.name == "kustomization.yaml":
                    what, errors = check_kustomization(path, root)
                    report(path, what, errors)
                else:
                    names, errors = check_k8s_file(path, versions)
                    report(path, f"{', '.join(names) or 'no documents'} (Kubernetes {vs}, strict)", errors)
            except yaml.YAMLError as e:
                report(path, "not YAML", [" ".join(str(e).split())])

    schemas, schema_errors = crd_schemas(crds)
    for e in schema_errors:
        print(f"FAIL {e.replace(str(root) + '/', '')}")
        failed += 1
    for path in yaml_files(deploy / "examples"):
        try:
            names, errors = check_example(path, schemas)
            report(path, f"{', '.join(names)} against its CRD", errors)
        except yaml.YAMLError as e:
            report(path, "not YAML", [" ".join(str(e).split())])

    registered = registered_series(root)
    for path in sorted((deploy / "grafana").glob("*.json")):
        what, errors = check_dashboard(path, registered)
        report(path, what or "dashboard", errors)

    print(f"validate-deploy: {checked} files checked, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
