#!/usr/bin/env python3
"""Static checks of the container image, the compose demo and the install paths
(no container engine here, so nothing is built or run):
  - Containerfile: multi-stage on debian:12, cmake --build and --install, the runtime
    libraries, a non-root USER 65532, ENTRYPOINT the installed binary
  - one binary path everywhere: cmake's default prefix /usr/local -> /usr/local/bin/mqttlive
    in the Containerfile, the systemd unit, the docs' setcap line
  - the build stage installs every build dependency scripts/setup.sh lists (less test tools)
  - compose.yaml: Mosquitto, mqttlive in its network namespace with only NET_RAW,
    Prometheus loading the alert rules, Grafana with provisioning; mounted files exist
With --binary PATH (a built mqttlive), also: every shared library the binary needs
directly (ELF NEEDED) comes from a package the runtime stage installs, or from the base image.
"""
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = "/usr/local/bin/mqttlive"
RUNTIME_LIBS = ["libpcap0.8", "libcap2", "libcivetweb1", "libprometheus-cpp-pull1.0", "libprometheus-cpp-core1.0",
                "libcpp-httplib0.11", "libssl3", "libyaml-cpp0.7", "libfmt9", "libspdlog1.10"]
BASE_IMAGE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}  # always in debian:12
TEST_ONLY_DEV = {"libgtest-dev", "libgmock-dev", "libbenchmark-dev"}


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def check_containerfile(errs):
    cf = read("deploy", "container", "Containerfile")
    froms = re.findall(r"^FROM\s+(\S+)", cf, re.M)
    if len(froms) < 2 or any(f != "debian:12" for f in froms):
        errs.append(f"Containerfile: expected a multi-stage build on debian:12, got FROM {froms}")
    for needle in ("cmake --build", "cmake --install", "COPY --from=build"):
        if needle not in cf:
            errs.append(f"Containerfile: missing '{needle}'")
    build, runtime = cf.split("FROM", 2)[1:]
    setup = read("scripts", "setup.sh")
    pkgs = re.search(r"^pkgs=\((.*?)^\)", setup, re.M | re.S).group(1).split()
    for dev in pkgs:
        if dev.endswith("-dev") and dev not in TEST_ONLY_DEV and not dev.startswith("libclang"):
            if not re.search(rf"(?<![\w.-]){re.escape(dev)}(?![\w.-])", build):
                errs.append(f"Containerfile: build stage lacks {dev} (listed in scripts/setup.sh)")
    for lib in RUNTIME_LIBS:
        if not re.search(rf"(?<![\w.-]){re.escape(lib)}(?![\w.-])", runtime):
            errs.append(f"Containerfile: runtime stage does not install {lib}")
    if not re.search(r"^USER\s+65532(:65532)?\s*$", cf, re.M):
        errs.append("Containerfile: USER must be 65532")
    if f'ENTRYPOINT ["{BIN}"]' not in cf:
        errs.append(f"Containerfile: ENTRYPOINT must be [\"{BIN}\"]")
    if "CMAKE_INSTALL_PREFIX=/usr/local" not in cf:
        errs.append("Containerfile: install prefix must be /usr/local")


def check_paths(errs):
    unit = read("deploy", "systemd", "mqttlive.service")
    m = re.search(r"^ExecStart=(\S+)\s+--config\.file\s+/etc/mqttlive/mqttlive\.yaml\s*$", unit, re.M)
    if not m or m.group(1) != BIN:
        errs.append(f"mqttlive.service: ExecStart must be {BIN} --config.file /etc/mqttlive/mqttlive.yaml")
    if not re.search(r"^User=mqttlive$", unit, re.M):
        errs.append("mqttlive.service: User=mqttlive")
    if "mqttlive" not in read("deploy", "systemd", "mqttlive.sysusers").split():
        errs.append("mqttlive.sysusers: no mqttlive user")
    for line in read("docs", "deploying.md").splitlines():
        if "setcap" in line and "mqttlive" in line and "/bin/mqttlive" in line and BIN not in line:
            errs.append(f"docs/deploying.md: setcap on another path than {BIN}: {line.strip()}")
    if not re.search(r"install\(TARGETS mqttlive RUNTIME DESTINATION \$\{CMAKE_INSTALL_BINDIR\}\)",
                     read("src", "CMakeLists.txt")):
        errs.append("src/CMakeLists.txt: the binary is no longer installed to CMAKE_INSTALL_BINDIR")


def check_compose(errs):
    base = os.path.join(ROOT, "deploy", "compose")
    c = yaml.safe_load(read("deploy", "compose", "compose.yaml"))
    s = c.get("services") or {}
    for name in ("mosquitto", "mqttlive", "prometheus", "grafana"):
        if name not in s:
            errs.append(f"compose: no service {name}")
    if errs:
        return
    if not str(s["mosquitto"].get("image", "")).startswith("eclipse-mosquitto"):
        errs.append("compose: mosquitto must use the eclipse-mosquitto image")
    m = s["mqttlive"]
    if m.get("network_mode") != "service:mosquitto":
        errs.append("compose: mqttlive needs network_mode: service:mosquitto")
    if m.get("cap_add") != ["NET_RAW"] or m.get("cap_drop") != ["ALL"]:
        errs.append("compose: mqttlive must drop ALL and add only NET_RAW")
    if m.get("ports"):
        errs.append("compose: mqttlive cannot publish ports in another service's namespace")
    if not any(str(p).endswith("9883") for p in s["mosquitto"].get("ports", [])):
        errs.append("compose: publish 9883 on mosquitto (mqttlive shares its network namespace)")
    build = m.get("build") or {}
    if os.path.normpath(os.path.join(base, build.get("context", ""), build.get("dockerfile", ""))) != \
            os.path.join(ROOT, "deploy", "container", "Containerfile"):
        errs.append("compose: mqttlive must build deploy/container/Containerfile from the repository root")
    for svc, body in s.items():
        for v in body.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith(".") and not os.path.exists(os.path.join(base, src)):
                errs.append(f"compose: {svc} mounts missing {src}")
    prom_mounts = {v.split(":")[1] for v in s["prometheus"].get("volumes", [])}
    cfg = yaml.safe_load(read("deploy", "compose", "prometheus.yml"))
    for rf in cfg.get("rule_files", []):
        if os.path.join("/etc/prometheus", rf) not in prom_mounts:
            errs.append(f"compose: prometheus rule file {rf} is not mounted")
    if not any(v.split(":")[0].endswith("mqttlive-alerts.yml") for v in s["prometheus"].get("volumes", [])):
        errs.append("compose: prometheus does not load deploy/prometheus/mqttlive-alerts.yml")
    jobs = {j["job_name"] for j in cfg.get("scrape_configs", [])}
    if "mqttlive" not in jobs:
        errs.append("compose: prometheus.yml needs job_name mqttlive (alerts use job=\"mqttlive\")")


def runtime_packages():
    """Package names of the runtime stage's `apt-get install` (up to the next &&)."""
    runtime = read("deploy", "container", "Containerfile").split("FROM", 2)[-1]
    m = re.search(r"apt-get install([^&]*)&&", runtime.replace("\\\n", " "))
    return {w for w in (m.group(1).split() if m else []) if not w.startswith("-")}


def check_binary(errs, binary):
    """ELF NEEDED libraries -> Debian packages; all must be installed by the runtime stage."""
    installed = runtime_packages()
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"Shared library: \[(.+?)\]", out)
    for so in needed:
        r = subprocess.run(["dpkg", "-S", f"*/{so}"], capture_output=True, text=True)
        pkgs = {line.split(":")[0] for line in r.stdout.splitlines() if ":" in line}
        if not pkgs:
            errs.append(f"{binary}: no Debian package provides {so}")
        elif not pkgs & (installed | BASE_IMAGE):
            errs.append(f"{binary}: needs {so} from {sorted(pkgs)}, which the runtime stage does not install")
    print(f"{binary}: {len(needed)} shared libraries needed")


def main():
    errs = []
    if len(sys.argv) == 3 and sys.argv[1] == "--binary":
        check_binary(errs, sys.argv[2])
        for e in errs:
            print(e)
        return 1 if errs else 0
    check_containerfile(errs)
    check_paths(errs)
    check_compose(errs)
    for e in errs:
        print(e)
    print(f"{len(errs)} problems")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
