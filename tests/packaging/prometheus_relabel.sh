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
listen=127.0.60.3:19090

# Start Prometheus on CONFIG, wait until its targets are known, save
# /api/v1/targets to OUT, stop it.
targets_of() { # CONFIG OUT
  rm -rf "$dir/data"
  prometheus --config.file="$1" --storage.tsdb.path="$dir/data" \
    --web.listen-address="$listen" --log.level=warn >"$dir/prom.log" 2>&1 &
  pid=$!
  local ok=0
  for _ in $(seq 1 150); do
    if curl -fsS "http://$listen/api/v1/targets" >"$2" 2>/dev/null &&
      python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]; sys.exit(0 if d["activeTargets"] or d["droppedTargets"] else 1)' "$2"; then
      ok=1; break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
  [ "$ok" = 1 ] || { cat "$dir/prom.log"; echo "FAIL: Prometheus on $1 gave no targets"; exit 1; }
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
