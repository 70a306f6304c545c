"""Read examples/kubernetes/trainer.yaml as Kubernetes would and check
that its pieces fit: the init container's credentials volume is where the
trainer's TLSHIM_DIR points, the shim is preloaded and on, the token
comes from a Secret, the credentials live in memory, TLSHIM_PEERS names
exactly the job's pods by their headless-service names. Prints the init
container's script, or the trainer's TLSHIM_PEERS, for the test to use.

Usage: k8s_pod.py FILE check|init-script|peers
"""
import sys

import yaml


def find(docs, kind):
    return next(d for d in docs if d and d.get("kind") == kind)


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom"))
            for e in container.get("env", [])}


def mounts_of(container):
    return {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}


def main():
    docs = list(yaml.safe_load_all(open(sys.argv[1])))
    job = find(docs, "Job")
    pod = job["spec"]["template"]["spec"]
    init = next(c for c in pod["initContainers"] if c["name"] == "tlshim-join")
    trainer = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    script = init["command"][-1]
    if sys.argv[2] == "init-script":
        print(script)
        return
    if sys.argv[2] == "peers":
        print(env_of(trainer).get("TLSHIM_PEERS", ""))
        return
    errors = []
    env = env_of(trainer)
    if env.get("TLSHIM") != "1":
        errors.append("the trainer does not set TLSHIM=1")
    if not str(env.get("LD_PRELOAD", "")).endswith("libtlshim.so"):
        errors.append("the trainer does not preload libtlshim.so")
    creds = mounts_of(init).get("tlshim-creds")
    if creds is None or mounts_of(trainer).get("tlshim-creds") != env.get("TLSHIM_DIR"):
        errors.append("TLSHIM_DIR is not the volume the init container fills")
    if creds is None or f"--out {creds}" not in " ".join(script.split()):
        errors.append("the init container does not join into its volume")
    if volumes["tlshim-creds"].get("emptyDir", {}).get("medium") != "Memory":
        errors.append("the credentials volume is not memory-backed")
    if "secret" not in volumes.get("tlshim-token", {}):
        errors.append("the token does not come from a Secret")
    if "--token-file " + mounts_of(init)["tlshim-token"] not in script:
        errors.append("the init container does not read the token file")
    if "TLSHIM_JOB" not in env or job["metadata"]["name"] != env["TLSHIM_JOB"]:
        errors.append("TLSHIM_JOB does not name the job the token is for")
    pods = ["%s-%d.%s" % (job["metadata"]["name"], i, pod.get("subdomain"))
            for i in range(job["spec"]["completions"])]
    service = find(docs, "Service")
    if service["metadata"]["name"] != pod.get("subdomain") or \
            service["spec"].get("clusterIP") != "None":
        errors.append("the pods' subdomain is not a headless Service")
    if str(env.get("TLSHIM_PEERS", "")).split(",") != pods:
        errors.append("TLSHIM_PEERS is not the job's pods: %s" % ",".join(pods))
    if errors:
        sys.exit("; ".join(errors))
    print("pod spec consistent")


main()
