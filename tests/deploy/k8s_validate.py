#!/usr/bin/env python3
"""Offline validation of deploy/kubernetes/.

Why not a schema validator: kubeconform and kubeval are not packaged in Debian, kubectl
(kubernetes-client) needs an API server even for --dry-run=client, and nothing may be
downloaded. So this checks the fields that matter, against the API's field names:
  - apiVersion/kind known; metadata.name a DNS-1123 name; no unknown PodSpec, Container
    or SecurityContext fields (typos); ints/bools where the API wants them
  - wiring: selectors match template labels, mounts name volumes, ConfigMaps exist,
    probe/Service/ServiceMonitor ports resolve to named ports, jobLabel gives job="mqttlive"
  - security: nothing privileged; every container non-root, read-only root, no privilege
    escalation, drops ALL; NET_RAW only for the sidecar, NET_RAW+NET_ADMIN only for the
    DaemonSet; the DaemonSet uses hostNetwork with ClusterFirstWithHostNet
  - the embedded mqttlive.yaml configs follow the config schema; EMQX: factor 1.5, ports
  - prometheusrule.yaml holds exactly the groups of deploy/prometheus/mqttlive-alerts.yml
  - each kustomization lists every manifest of its directory
Usage: k8s_validate.py [DIR]   (default deploy/kubernetes)
"""
import glob
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from mqttlive_config_schema import check_config  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "deploy", "prometheus", "mqttlive-alerts.yml")
IMAGE = "mqttlive:latest"
MQTTLIVE_UID = 65532

KINDS = {("v1", "ConfigMap"), ("v1", "Service"), ("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"),
         ("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
         ("kustomize.config.k8s.io/v1beta1", "Kustomization")}
POD_SPEC = {"activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers", "dnsConfig",
            "dnsPolicy", "enableServiceLinks", "ephemeralContainers", "hostAliases", "hostIPC", "hostNetwork",
            "hostPID", "hostUsers", "hostname", "imagePullSecrets", "initContainers", "nodeName", "nodeSelector",
            "os", "overhead", "preemptionPolicy", "priority", "priorityClassName", "readinessGates",
            "resourceClaims", "restartPolicy", "runtimeClassName", "schedulerName", "schedulingGates",
            "securityContext", "serviceAccountName", "setHostnameAsFQDN", "shareProcessNamespace", "subdomain",
            "terminationGracePeriodSeconds", "tolerations", "topologySpreadConstraints", "volumes"}
CONTAINER = {"args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle", "livenessProbe", "name",
             "ports", "readinessProbe", "resizePolicy", "resources", "restartPolicy", "securityContext",
             "startupProbe", "stdin", "stdinOnce", "terminationMessagePath", "terminationMessagePolicy", "tty",
             "volumeDevices", "volumeMounts", "workingDir"}
CONTAINER_SC = {"allowPrivilegeEscalation", "appArmorProfile", "capabilities", "privileged", "procMount",
                "readOnlyRootFilesystem", "runAsGroup", "runAsNonRoot", "runAsUser", "seLinuxOptions",
                "seccompProfile", "windowsOptions"}
POD_SC = {"appArmorProfile", "fsGroup", "fsGroupChangePolicy", "runAsGroup", "runAsNonRoot", "runAsUser",
          "seLinuxOptions", "seccompProfile", "supplementalGroups", "supplementalGroupsPolicy", "sysctls",
          "windowsOptions"}
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Checker:
    def __init__(self):
        self.errors = []

    def err(self, where, msg):
        self.errors.append(f"{where}: {msg}")

    def unknown(self, where, obj, allowed):
        for k in obj or {}:
            if k not in allowed:
                self.err(where, f"unknown field '{k}'")

    def typed(self, where, obj, key, typ):
        if key in obj and (not isinstance(obj[key], typ) or (typ is int and isinstance(obj[key], bool))):
            self.err(where, f"{key} must be {typ.__name__}, got {obj[key]!r}")


def load_dir(d):
    docs = []
    for path in sorted(glob.glob(os.path.join(d, "**", "*.yaml"), recursive=True)):
        with open(path) as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if doc is not None:
                    docs.append((os.path.relpath(path, ROOT), i, doc))
    return docs


def check_container(c, where, cont, pod_spec, workload_kind, volumes, configmaps):
    c.unknown(where, cont, CONTAINER)
    for k in ("name", "image"):
        if not cont.get(k):
            c.err(where, f"container has no {k}")
    ports = {}
    for p in cont.get("ports", []):
        c.typed(where, p, "containerPort", int)
        if "name" in p:
            if len(p["name"]) > 15 or not PORT_NAME.match(p["name"]):
                c.err(where, f"bad port name {p['name']!r}")
            ports[p["name"]] = p.get("containerPort")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        pr = cont.get(probe) or {}
        for h in ("httpGet", "tcpSocket"):
            port = (pr.get(h) or {}).get("port")
            if isinstance(port, str) and port not in ports:
                c.err(where, f"{probe} port {port!r} is not a named port of the container")
    for m in cont.get("volumeMounts", []):
        if m.get("name") not in volumes:
            c.err(where, f"volumeMount {m.get('name')!r} has no volume")
    sc = cont.get("securityContext") or {}
    c.unknown(f"{where}.securityContext", sc, CONTAINER_SC)
    for k in ("runAsUser", "runAsGroup"):
        c.typed(f"{where}.securityContext", sc, k, int)
    for k in ("runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation", "privileged"):
        c.typed(f"{where}.securityContext", sc, k, bool)
    if sc.get("privileged"):
        c.err(where, "privileged container")
    if sc.get("runAsNonRoot") is not True:
        c.err(where, "runAsNonRoot must be true")
    if sc.get("readOnlyRootFilesystem") is not True:
        c.err(where, "readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        c.err(where, "allowPrivilegeEscalation must be false")
    caps = sc.get("capabilities") or {}
    if caps.get("drop") != ["ALL"]:
        c.err(where, "capabilities.drop must be [ALL]")
    added = set(caps.get("add") or [])
    is_mqttlive = str(cont.get("image", "")).split(":")[0].endswith("mqttlive")
    if is_mqttlive:
        want = {"Deployment": {"NET_RAW"}, "DaemonSet": {"NET_RAW", "NET_ADMIN"}}[workload_kind]
        if added != want:
            c.err(where, f"mqttlive in a {workload_kind} must add exactly {sorted(want)}, adds {sorted(added)}")
        if cont.get("image") != IMAGE:
            c.err(where, f"image must be {IMAGE}, is {cont.get('image')!r}")
        if sc.get("runAsUser") != MQTTLIVE_UID:
            c.err(where, f"mqttlive must run as uid {MQTTLIVE_UID}")
        args = cont.get("args") or []
        if args[:2] != ["--config.file", "/etc/mqttlive/mqttlive.yaml"]:
            c.err(where, "args must be --config.file /etc/mqttlive/mqttlive.yaml")
        mount = next((m for m in cont.get("volumeMounts", []) if m.get("mountPath") == "/etc/mqttlive"), None)
        vol = volumes.get(mount["name"]) if mount else None
        cm = (vol or {}).get("configMap", {}).get("name")
        if cm not in configmaps or "mqttlive.yaml" not in configmaps[cm].get("data", {}):
            c.err(where, "/etc/mqttlive must be a ConfigMap with key mqttlive.yaml")
        else:
            cfg = yaml.safe_load(configmaps[cm]["data"]["mqttlive.yaml"])
            listen = (cfg.get("metrics") or {}).get("listen_address", ":9883")
            if ports.get("metrics") != 9883 or not listen.endswith(":9883"):
                c.err(where, "metrics must be served on 9883 (port named 'metrics', metrics.listen_address)")
    elif added:
        c.err(where, f"only mqttlive may add capabilities, {cont.get('name')} adds {sorted(added)}")
    return ports


def check_workload(c, where, doc, configmaps):
    kind = doc["kind"]
    spec = doc.get("spec") or {}
    tmpl = spec.get("template") or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        c.err(where, "spec.selector.matchLabels must match the template labels")
    pod = tmpl.get("spec") or {}
    c.unknown(f"{where}.spec.template.spec", pod, POD_SPEC)
    c.unknown(f"{where}.securityContext", pod.get("securityContext"), POD_SC)
    for k in ("hostPID", "hostIPC"):
        if pod.get(k):
            c.err(where, f"{k} must not be set")
    if kind == "DaemonSet":
        if pod.get("hostNetwork") is not True:
            c.err(where, "DaemonSet must use hostNetwork: true")
        if pod.get("dnsPolicy") != "ClusterFirstWithHostNet":
            c.err(where, "hostNetwork pods need dnsPolicy: ClusterFirstWithHostNet")
    elif pod.get("hostNetwork"):
        c.err(where, "only the DaemonSet may use hostNetwork")
    volumes = {v.get("name"): v for v in pod.get("volumes", [])}
    for name, v in volumes.items():
        cm = (v.get("configMap") or {}).get("name")
        if cm and cm not in configmaps:
            c.err(where, f"volume {name} refers to unknown ConfigMap {cm}")
    containers = pod.get("containers") or []
    if not containers:
        c.err(where, "no containers")
    ports = {}
    images = []
    for i, cont in enumerate(containers):
        ports.update(check_container(c, f"{where}.containers[{i}]", cont, pod, kind, volumes, configmaps))
        images.append(str(cont.get("image", "")))
    if not any(i.split(":")[0].endswith("mqttlive") for i in images):
        c.err(where, "no mqttlive container")
    if kind == "Deployment" and not any(i.startswith("eclipse-mosquitto") for i in images):
        c.err(where, "the sidecar Deployment must run an eclipse-mosquitto container")
    return labels, ports


def check_dir(c, d):
    docs = load_dir(d)
    configmaps, workloads, services = {}, [], []
    for path, i, doc in docs:
        where = f"{path}#{i}"
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key not in KINDS:
            c.err(where, f"unknown apiVersion/kind {key}")
            continue
        if doc["kind"] == "Kustomization":
            continue
        name = (doc.get("metadata") or {}).get("name", "")
        if not DNS1123.match(name) or len(name) > 63:
            c.err(where, f"bad metadata.name {name!r}")
        if doc["kind"] == "ConfigMap":
            configmaps[name] = doc
            text = (doc.get("data") or {}).get("mqttlive.yaml")
            if text is not None:
                for e in check_config(yaml.safe_load(text), "mqttlive.yaml"):
                    c.err(where, e)
    for path, i, doc in docs:
        where = f"{path}#{i}"
        if doc.get("kind") in ("Deployment", "DaemonSet"):
            labels, ports = check_workload(c, where, doc, configmaps)
            workloads.append((where, doc["kind"], labels, ports))
    for path, i, doc in docs:
        where = f"{path}#{i}"
        if doc.get("kind") != "Service":
            continue
        spec = doc.get("spec") or {}
        sel = spec.get("selector") or {}
        match = [w for w in workloads if sel and all(w[2].get(k) == v for k, v in sel.items())]
        if not match:
            c.err(where, "selector matches no workload")
        for p in spec.get("ports", []):
            if not p.get("name"):
                c.err(where, "Service ports must be named")
            tp = p.get("targetPort", p.get("port"))
            if isinstance(tp, str) and not any(tp in w[3] for w in match):
                c.err(where, f"targetPort {tp!r} is no named container port")
            if p.get("port") == 9883 and p.get("name") != "metrics":
                c.err(where, "port 9883 must be named 'metrics'")
        services.append((where, (doc.get("metadata") or {}).get("labels") or {}, spec.get("ports", [])))
    for path, i, doc in docs:
        where = f"{path}#{i}"
        if doc.get("kind") == "ServiceMonitor":
            spec = doc.get("spec") or {}
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            match = [s for s in services if sel and all(s[1].get(k) == v for k, v in sel.items())]
            if not match:
                c.err(where, "selector matches no Service")
            for ep in spec.get("endpoints", []):
                if not any(ep.get("port") == p.get("name") for s in match for p in s[2]):
                    c.err(where, f"endpoint port {ep.get('port')!r} is no named port of the selected Service")
            jl = spec.get("jobLabel")
            if not match or not jl or any(s[1].get(jl) != "mqttlive" for s in match):
                c.err(where, "jobLabel must name a Service label whose value is 'mqttlive' (alerts use job=\"mqttlive\")")
        elif doc.get("kind") == "PrometheusRule":
            with open(RULES) as f:
                if (doc.get("spec") or {}).get("groups") != yaml.safe_load(f)["groups"]:
                    c.err(where, "spec.groups differ from deploy/prometheus/mqttlive-alerts.yml: "
                                 "run scripts/gen-prometheusrule.sh")
        elif doc.get("kind") == "Kustomization":
            base = os.path.dirname(os.path.join(ROOT, path))
            listed = set(doc.get("resources") or [])
            present = {os.path.basename(p) for p in glob.glob(os.path.join(base, "*.yaml"))} - {"kustomization.yaml"}
            for r in listed - present:
                c.err(where, f"resource {r} does not exist")
            for r in present - listed:
                c.err(where, f"{r} is not listed in resources")
    kinds = {(w[1]) for w in workloads}
    if kinds != {"Deployment", "DaemonSet"}:
        c.err(d, f"expected the sidecar Deployment and the EMQX DaemonSet, found {sorted(kinds)}")
    emqx = [doc for _, _, doc in docs if doc.get("kind") == "ConfigMap" and "emqx" in doc["metadata"]["name"]]
    for doc in emqx:
        cfg = yaml.safe_load(doc["data"]["mqttlive.yaml"])
        if (cfg.get("keepalive") or {}).get("factor") != 1.5:
            c.err(doc["metadata"]["name"], "EMQX: keepalive.factor must equal keepalive_multiplier (1.5)")
        if {lst["port"] for lst in cfg.get("listeners", [])} != {1883, 8883, 8083}:
            c.err(doc["metadata"]["name"], "EMQX: listeners must be 1883, 8883 and 8083")
    if not emqx:
        c.err(d, "no EMQX mqttlive ConfigMap")
    if not any(doc.get("kind") == "PrometheusRule" for _, _, doc in docs):
        c.err(d, "no PrometheusRule")
    return len(docs)


def main(argv):
    d = argv[1] if len(argv) > 1 else os.path.join(ROOT, "deploy", "kubernetes")
    c = Checker()
    n = check_dir(c, d)
    for e in c.errors:
        print(e)
    print(f"{n} manifests, {len(c.errors)} problems")
    return 1 if c.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
