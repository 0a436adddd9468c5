#!/usr/bin/env bash
# prometheus_relabel.sh SRCDIR - the Prometheus examples do what they say,
# checked with a real, private Prometheus (config and TSDB in a temporary
# directory, listening on 127.0.60.3 only, stopped on exit):
#  (one Prometheus runs all jobs: prometheus.yml's and the shard job 3 times)
#  1. prometheus.yml: every probe target is scraped at the exporter with
#     /probe?module=M&target=HOST and keeps instance=HOST;
#  2. prometheus-shard.yml: run as shard 0, 1 and 2 (regex "k") over the
#     example target list, the kept targets partition the list: every target
#     is kept by exactly one shard.
# The exporter address in the examples is replaced by 127.0.60.3:1, where
# nothing listens, so the scrapes fail harmlessly and nothing else is touched.
# /api/v1/targets is read once every job's discovery has reached it (each
# target of every job_name listed as active or dropped; at most 60 s):
# the scrape pools fill one by one, so "some targets" is not "all".
# Prometheus listens on port 19090, or the next free one up to 19099 when
# another run (or a leftover) holds it; the answers are checked to come from
# this run's Prometheus.
set -euo pipefail
ex=$1/packaging/examples/prometheus
command -v prometheus >/dev/null || { echo "prometheus not installed"; exit 1; }
dir=$(mktemp -d /tmp/sp-promrelabel.XXXXXX)
pid=
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
host=127.0.60.3
port=19090

# Write to OUT, as JSON, the targets Prometheus must discover from CONFIG:
# for every job_name, the __address__ of each target of its static_configs
# and of its file_sd_configs files (globs relative to CONFIG's directory).
expected_targets() { # CONFIG OUT
  python3 - "$1" "$2" <<'PY'
import glob, json, os, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
base = os.path.dirname(os.path.abspath(sys.argv[1]))
want = {}
for job in cfg["scrape_configs"]:
    addrs = set()
    for sc in job.get("static_configs", []):
        addrs.update(sc["targets"])
    for fs in job.get("file_sd_configs", []):
        for pattern in fs["files"]:
            for f in glob.glob(os.path.join(base, pattern)):
                for group in yaml.safe_load(open(f)):
                    addrs.update(group["targets"])
    if not addrs:
        sys.exit("FAIL: job %s has no targets to wait for" % job["job_name"])
    want[job["job_name"]] = sorted(addrs)
json.dump(want, open(sys.argv[2], "w"))
PY
}

# True when the /api/v1/targets answer in FILE accounts for every target
# of EXPECTED (expected_targets' output): each job's discovered addresses,
# kept (activeTargets) or dropped by relabeling (droppedTargets), are all
# there, so every job's discovery has reached the scrape pools. Otherwise
# prints what is missing (with -v) and is false.
targets_complete() { # FILE EXPECTED [-v]
  python3 - "$@" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))["data"]
except (OSError, ValueError, KeyError, TypeError):
    sys.exit(1)
want = json.load(open(sys.argv[2]))
seen = {}
for t in (d.get("activeTargets") or []) + (d.get("droppedTargets") or []):
    dl = t.get("discoveredLabels", {})
    seen.setdefault(dl.get("job"), set()).add(dl.get("__address__"))
missing = {j: sorted(set(a) - seen.get(j, set())) for j, a in want.items()}
missing = {j: a for j, a in missing.items() if a}
if missing and len(sys.argv) > 3:
    print("missing targets per job: %r" % missing)
sys.exit(1 if missing else 0)
PY
}

# True when the Prometheus answering on $listen is the one started here
# (its TSDB is ours), not a leftover or a concurrent run's.
ours() {
  local flags
  flags=$(curl -fsS --max-time 5 "http://$listen/api/v1/status/flags" 2>/dev/null) || return 1
  python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["data"]["storage.tsdb.path"] == sys.argv[2] else 1)' \
    "$flags" "$dir/data" 2>/dev/null
}

# Start Prometheus on CONFIG on $host:$port, or the next of 10 ports when
# that one is taken (a leftover or a concurrent run); sets pid and listen.
start_prometheus() { # CONFIG
  local p deadline
  for p in $(seq "$port" $((port + 9))); do
    listen=$host:$p
    rm -rf "$dir/data"
    prometheus --config.file="$1" --storage.tsdb.path="$dir/data" \
      --web.listen-address="$listen" --log.level=warn >"$dir/prom.log" 2>&1 &
    pid=$!
    deadline=$((SECONDS + 30))
    # Up when it answers as ours; on another port when it exits over the
    # address; a failure for anything else.
    while [ "$SECONDS" -lt "$deadline" ]; do
      ours && return 0
      if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        pid=
        grep -q 'address already in use' "$dir/prom.log" && continue 2
        cat "$dir/prom.log"; echo "FAIL: Prometheus on $1 exited"; exit 1
      fi
      sleep 0.2
    done
    cat "$dir/prom.log"; echo "FAIL: Prometheus on $1 did not answer within 30 s"; exit 1
  done
  echo "FAIL: ports $port-$((port + 9)) on $host are all taken"; exit 1
}

# Start Prometheus on CONFIG, wait (at most 60 s) until every job's
# targets are in /api/v1/targets (targets_complete), save that answer to
# OUT, stop it.
targets_of() { # CONFIG OUT
  local ok=0 deadline
  expected_targets "$1" "$dir/expected.json"
  start_prometheus "$1"
  deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if curl -fsS --max-time 5 "http://$listen/api/v1/targets" >"$2" 2>/dev/null &&
      targets_complete "$2" "$dir/expected.json"; then
      ok=1; break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
  if [ "$ok" != 1 ]; then
    cat "$dir/prom.log"
    targets_complete "$2" "$dir/expected.json" -v || true
    echo "FAIL: Prometheus on $1 did not list every job's targets within 60 s"
    exit 1
  fi
}

cp "$ex/smtp-probe.rules.yml" "$dir/"
cp -r "$ex/smtp-targets" "$dir/"
# One Prometheus for all: the jobs of prometheus.yml as they are, plus the
# shard job of prometheus-shard.yml three times (job smtp-shard-K, regex K).
python3 - "$ex/prometheus.yml" "$ex/prometheus-shard.yml" "$dir/combined.yml" <<'PY'
import copy, sys, yaml
main = yaml.safe_load(open(sys.argv[1]))
shard = yaml.safe_load(open(sys.argv[2]))
def readdress(job):
    for r in job.get("relabel_configs", []):
        if r.get("replacement") == "127.0.0.1:9587":
            r["replacement"] = "127.0.60.3:1"
    for sc in job.get("static_configs", []):
        sc["targets"] = ["127.0.60.3:1" if t == "127.0.0.1:9587" else t for t in sc["targets"]]
jobs = main["scrape_configs"]
for j in jobs:
    readdress(j)
base = [j for j in shard["scrape_configs"] if j["job_name"] == "smtp"][0]
keeps = [r for r in base["relabel_configs"] if r.get("action") == "keep" and r.get("regex") == "0"]
assert len(keeps) == 1, "shard example: no keep on regex \"0\""
for k in range(3):
    j = copy.deepcopy(base)
    j["job_name"] = "smtp-shard-%d" % k
    readdress(j)
    for r in j["relabel_configs"]:
        if r.get("action") == "keep":
            r["regex"] = str(k)
    jobs.append(j)
main["scrape_configs"] = jobs
yaml.safe_dump(main, open(sys.argv[3], "w"))
PY
targets_of "$dir/combined.yml" "$dir/t.json"
python3 - "$dir/t.json" "$ex/prometheus.yml" "$ex/smtp-targets/example.json" <<'PY'
import json, sys, urllib.parse, yaml
t = json.load(open(sys.argv[1]))["data"]["activeTargets"]
cfg = yaml.safe_load(open(sys.argv[2]))
job = [j for j in cfg["scrape_configs"] if j["job_name"] == "smtp"][0]
want = {}
for sc in job["static_configs"]:
    for host in sc["targets"]:
        want[host] = sc["labels"]["module"]
got = {}
shards = {0: [], 1: [], 2: []}
shard_modules = {}
for a in t:
    u = urllib.parse.urlparse(a["scrapeUrl"])
    q = urllib.parse.parse_qs(u.query)
    name = a["labels"]["job"]
    if name == "smtp_exporter":
        continue
    if u.netloc != "127.0.60.3:1" or u.path != "/probe":
        sys.exit("FAIL: %s does not scrape the exporter's /probe" % a["scrapeUrl"])
    if a["labels"]["instance"] != q["target"][0]:
        sys.exit("FAIL: instance %s is not the target %s" % (a["labels"]["instance"], q["target"][0]))
    if name == "smtp":
        got[q["target"][0]] = q["module"][0]
    else:
        shards[int(name.rsplit("-", 1)[1])].append(q["target"][0])
        shard_modules[q["target"][0]] = q["module"][0]
if got != want:
    sys.exit("FAIL: scraped %r, expected %r" % (got, want))
print("ok: prometheus.yml scrapes /probe?target=HOST&module=M for", ", ".join(sorted(got)))
for k, v in shards.items():
    print("shard %d keeps: %s" % (k, " ".join(sorted(v)) or "(none)"))
listed = sorted(h for g in json.load(open(sys.argv[3])) for h in g["targets"])
kept = sorted(h for v in shards.values() for h in v)
if kept != listed:
    sys.exit("FAIL: shards kept %r, the target list is %r (each must be kept exactly once)" % (kept, listed))
sd_modules = {h: g["labels"]["module"] for g in json.load(open(sys.argv[3])) for h in g["targets"]}
if shard_modules != sd_modules:
    sys.exit("FAIL: shard modules %r, file_sd says %r" % (shard_modules, sd_modules))
print("ok: 3 shards partition the %d targets, each probed with its file_sd module" % len(listed))
PY
