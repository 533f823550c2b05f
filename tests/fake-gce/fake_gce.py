#!/usr/bin/env python3
"""fake-gce: a small Google Compute Engine emulator for kiln's tests.

It serves, on 127.0.0.1, the parts of compute v1 that kiln's googlecompute
builder calls (images get/getFromFamily/list/insert/delete, instances
insert/get/list/stop/delete, disks get/list/delete, zone and global
operations get/wait) with compute v1's JSON shapes, operation objects, error
bodies and pagination, plus an OAuth 2.0 token endpoint that checks the RS256
JWT assertion against the public key of a service-account key it issued.

Instances are real QEMU guests under TCG booted from the emulator's images
(qcow2 files; an instance's disk is an overlay on its image). Each guest
reaches a metadata server at 169.254.169.254 (QEMU user networking with
net=169.254.169.0/24 and a guestfwd) that serves
computeMetadata/v1/instance/attributes/{ssh-keys,startup-script,...}; the
image carries a small guest agent (a boot script) that adds the users and
keys of `ssh-keys`, as Google's guest agent does.

SSH: GCE gives an instance an external IP with sshd on port 22. The emulator
gives each instance its own loopback address 127.77.X.Y as natIP and forwards
port 22 of that address to the guest, so a client connects to natIP:22 as it
would on GCE: nothing emulator-specific in the client.

Cloud Storage (the JSON API's parts googlecompute-import uses): buckets
get/insert, resumable uploads with Google's semantics (a session URI in
`Location`, chunks with `Content-Range`, 308 with `Range: bytes=0-N` while
incomplete, `bytes */TOTAL` to ask where a session stands), objects
get/media/delete, and GCS's error bodies. images.insert takes a
`rawDisk.source` naming one of its objects (https://storage.googleapis.com/
BUCKET/OBJECT): a GNU-format .tar.gz holding `disk.raw`, which becomes the
image's qcow2. Point clients at it with STORAGE_EMULATOR_HOST=127.0.0.1:PORT.

googlecompute-export: an instance booted from the worker image
(compute-image-tools, family debian-9-worker) is an exporter. It boots no
guest: the emulator performs what the startup script Packer puts in its
metadata does with gcloud and gsutil (create the disk NAME-toexport from
metadata `image_name`, attach it as `toexport`, dump it as disk.raw in a
GNU .tar.gz, `tar --format=oldgnu -Sczf` as Google documents, copy it to
each of the space-separated gs:// `paths`, detach and delete the disk),
writes its log to the serial port, and sets the instance's metadata
`startup-script-status` to `done`, or `error` after copying its log to
PATH.exporter.log when a step fails. Each step changes the emulator's state
as the API call would, so an interrupted export leaves what GCE would leave.
--fail export=script fails the dump; FAKE_GCE_HOLD_EXPORT=1 holds the
export (disk attached) until the instance is deleted.

--image PROJECT/NAME=FILE adds an image made from a disk file (any format
qemu-img reads), for tests that need an image without a build.

Usage:
  fake_gce.py [--iso PATH] [--cache DIR] [--state DIR]
              [--write-key PATH] [--write-unknown-key PATH]
              [--fail OPERATION=KIND]... [--bucket NAME]...

FAKE_GCE_HOLD_CHUNK=N: the first time a session receives its Nth data
chunk, the emulator reads it and never answers (an upload interrupted
mid-chunk); the chunk is not persisted.

Prints one line `fake-gce: listening on http://127.0.0.1:PORT` on stdout when
it is ready (PORT is chosen by the system), and `fake-gce: base image ready`
before it, once the base image exists. Base images are built once from the
kiln tiny installer ISO and cached in --cache (keyed by the ISO and the agent).

--fail instances.insert=quota makes instance creation end with a
QUOTA_EXCEEDED operation error, as GCE does when a regional quota is used up.
The same can be set with FAKE_GCE_FAIL=instances.insert=quota.
--fail instances.delete=permission refuses every instance deletion with
GCE's 403 for a missing compute.instances.delete permission.

Public images: project `ubuntu-os-cloud`, family `ubuntu-1604-lts`, image
`ubuntu-1604-xenial-v20201014` (the tiny system, whatever its name says).
"""

import argparse
import base64
import datetime
import fcntl
import hashlib
import http.server
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.exceptions import InvalidSignature

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
AGENT = os.path.join(HERE, "guest-agent.sh")
RELAY = os.path.join(HERE, "relay.py")
PUBLIC_PROJECT = "ubuntu-os-cloud"
PUBLIC_FAMILY = "ubuntu-1604-lts"
PUBLIC_IMAGE = "ubuntu-1604-xenial-v20201014"
# compute v1's GuestOsFeature.type values; images.insert refuses others.
GUEST_OS_FEATURES = {
    "BARE_METAL_LINUX_COMPATIBLE", "CCA_CAPABLE", "GVNIC", "IDPF", "MULTI_IP_SUBNET", "SECURE_BOOT",
    "SEV_CAPABLE", "SEV_LIVE_MIGRATABLE", "SEV_LIVE_MIGRATABLE_V2", "SEV_SNP_CAPABLE", "SNP_SVSM_CAPABLE",
    "SUSPEND_RESUME_COMPATIBLE", "TDX_CAPABLE", "UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "WINDOWS",
}
# The image Packer's googlecompute-export boots its exporter from.
WORKER_PROJECT = "compute-image-tools"
WORKER_FAMILY = "debian-9-worker"
WORKER_IMAGE = "debian-9-worker-v20200914"
# Part of the base image's cache key with the ISO and the agent: bump it when
# install_tiny_system or add_guest_agent changes what the image holds (the
# rest of this file may change without rebuilding it).
BASE_RECIPE = "fake-gce base image v1"

LOCK = threading.RLock()


def log(msg):
    print(f"fake-gce: {msg}", file=sys.stderr, flush=True)


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="milliseconds")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ApiError(Exception):
    """An error answered with compute v1's error body."""

    def __init__(self, code, reason, message, status=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.status = status or {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            409: "ALREADY_EXISTS",
            412: "FAILED_PRECONDITION",
        }.get(code, "UNKNOWN")

    def body(self):
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
                "status": self.status,
            }
        }


# ---------------------------------------------------------------- base image


def build_base_image(iso, cache):
    """The tiny system installed once, with the guest agent added: a qcow2 in
    the cache, keyed by the ISO's content, the agent and this recipe."""
    key = hashlib.sha256()
    with open(iso, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            key.update(chunk)
    for path in (AGENT,):
        with open(path, "rb") as f:
            key.update(f.read())
    key.update(BASE_RECIPE.encode())
    name = f"fake-gce-base-{key.hexdigest()[:16]}.qcow2"
    os.makedirs(cache, exist_ok=True)
    target = os.path.join(cache, name)
    with open(os.path.join(cache, "fake-gce-base.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(target):
            return target
        work = tempfile.mkdtemp(prefix="fake-gce-base-", dir=cache)
        try:
            install_tiny_system(iso, work)
            add_guest_agent(work)
            subprocess.run(
                ["qemu-img", "convert", "-O", "qcow2", os.path.join(work, "disk.raw"), os.path.join(work, "disk.qcow2")],
                check=True,
            )
            os.rename(os.path.join(work, "disk.qcow2"), target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def install_tiny_system(iso, work):
    log("installing the base image with the tiny installer (once; cached)")
    disk = os.path.join(work, "disk.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "1G"], check=True)
    answer = "disk=auto\nhostname=gce-instance\nusername=root\npassword=%s\nfinish=poweroff\n" % secrets.token_hex(16)

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = answer.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    serial = os.path.join(work, "serial-install.log")
    qmp = os.path.join(work, "qmp.sock")
    proc = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-no-reboot", "-cdrom", iso,
         "-drive", f"file={disk},if=virtio,format=qcow2", "-boot", "d", "-nic", "user,model=virtio-net-pci",
         "-serial", f"file:{serial}", "-display", "none", "-qmp", f"unix:{qmp},server=on,wait=off"],
        stdin=subprocess.DEVNULL, preexec_fn=os.setsid,
    )
    try:
        wait_for_text(serial, b"boot:", 120, proc)
        type_line(qmp, f"install url=http://10.0.2.2:{server.server_address[1]}/install.cfg")
        proc.wait(timeout=600)
    finally:
        server.shutdown()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with open(serial, "rb") as f:
        text = f.read()
    if b"tiny-installer: done" not in text:
        raise RuntimeError("the tiny installer did not finish:\n" + text[-2000:].decode(errors="replace"))
    subprocess.run(["qemu-img", "convert", "-O", "raw", disk, os.path.join(work, "disk.raw")], check=True)


def wait_for_text(path, text, seconds, proc):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("QEMU exited while installing the base image")
        try:
            with open(path, "rb") as f:
                if text in f.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no {text!r} in {path} after {seconds} s")


def qmp_connect(path):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(100):
        try:
            s.connect(path)
            break
        except OSError:
            time.sleep(0.1)
    f = s.makefile("rw")
    json.loads(f.readline())

    def cmd(c, **a):
        f.write(json.dumps({"execute": c, "arguments": a} if a else {"execute": c}) + "\n")
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "return" in r or "error" in r:
                return r

    cmd("qmp_capabilities")
    return s, cmd


def type_line(qmp, text):
    s, cmd = qmp_connect(qmp)
    names = {" ": "spc", ".": "dot", "/": "slash", "-": "minus", "=": "equal", "\n": "ret"}
    shifted = {":": "semicolon", "_": "minus"}
    for ch in text + "\n":
        if ch in shifted:
            keys = ["shift", shifted[ch]]
        elif ch in names:
            keys = [names[ch]]
        else:
            keys = [ch]
        cmd("send-key", keys=[{"type": "qcode", "data": k} for k in keys], **{"hold-time": 20})
        time.sleep(0.03)
    s.close()


# acceleratorTypes every fake zone offers (a few of GCE's names).
ACCELERATOR_TYPES = {"nvidia-tesla-t4", "nvidia-tesla-k80", "nvidia-tesla-p100", "nvidia-tesla-v100", "nvidia-l4"}


def add_guest_agent(work):
    """Writes the agent into the installed ext2 filesystem (partition 1 at
    sector 2048) with debugfs, and runs it from rcS before sshd starts so the
    keys are in place when SSH answers."""
    raw = os.path.join(work, "disk.raw")
    fs = f"{raw}?offset={2048 * 512}"
    rcs = os.path.join(work, "rcS")
    subprocess.run(["debugfs", "-R", f"dump /etc/init.d/rcS {rcs}", fs], check=True, capture_output=True)
    with open(rcs) as f:
        text = f.read()
    marker = "mkdir -p /etc/dropbear\n"
    if marker not in text:
        raise RuntimeError("the tiny system's rcS changed: no place for the guest agent")
    text = text.replace(marker, "/usr/sbin/gce-guest-agent\n" + marker, 1)
    with open(rcs, "w") as f:
        f.write(text)
    sudo = os.path.join(work, "sudo")
    with open(sudo, "w") as f:
        # The agent's users are uid 0 (the tiny system has no sudo): sudo only runs the command.
        f.write('#!/bin/sh\nwhile [ $# -gt 0 ]; do case "$1" in -E|-H|-n|-S) shift ;; -u) shift 2 ;; *) break ;; esac; done\nexec "$@"\n')
    script = "\n".join([
        "rm /etc/init.d/rcS",
        f"write {rcs} /etc/init.d/rcS",
        "sif /etc/init.d/rcS mode 0100755",
        f"write {AGENT} /usr/sbin/gce-guest-agent",
        "sif /usr/sbin/gce-guest-agent mode 0100755",
        f"write {sudo} /usr/bin/sudo",
        "sif /usr/bin/sudo mode 0100755",
    ]) + "\n"
    out = subprocess.run(["debugfs", "-w", "-f", "-", fs], input=script.encode(), check=True, capture_output=True)
    check = subprocess.run(["debugfs", "-R", "stat /usr/sbin/gce-guest-agent", fs], capture_output=True)
    if check.returncode != 0 or b"Inode:" not in check.stdout:
        raise RuntimeError("debugfs did not write the guest agent: " + out.stderr.decode(errors="replace"))


# ---------------------------------------------------------------- state


class Emulator:
    def __init__(self, args, base_image):
        self.args = args
        self.state_dir = args.state
        self.port = None
        self.keys = {}  # client_email -> public key
        self.tokens = {}  # token -> expiry
        self.principals = {}  # token -> the account it was issued to
        self.callers = set()  # accounts whose tokens called compute or storage
        self.impersonable = set(args.service_account)
        self.images = {}  # (project, name) -> dict
        self.instances = {}  # (project, zone, name) -> Instance
        self.disks = {}  # (project, zone, name) -> dict
        self.operations = {}  # (project, scope, name) -> dict
        self.failures = dict(f.split("=", 1) for f in args.fail if "=" in f)
        self.next_id = random.randint(10**17, 10**18)
        self.all_pids = []
        self.tokens_issued = 0
        self.instance_requests = []  # what each accepted instances.insert asked for (tests)
        self.metadata_sets = []  # instances.setMetadata calls accepted: instance and keys (tests)
        self.instances_created = 0  # instances.insert calls accepted
        self.buckets = {}  # name -> bucket resource
        self.objects = {}  # (bucket, name) -> object resource (+ _path)
        self.sessions = {}  # upload_id -> dict
        self.gcs_requests = []  # what the tests check: method, range, held
        self.hold_chunk = int(os.environ.get("FAKE_GCE_HOLD_CHUNK") or 0)
        self.held = False
        os.makedirs(os.path.join(self.state_dir, "images"), exist_ok=True)
        os.makedirs(os.path.join(self.state_dir, "gcs"), exist_ok=True)
        public_image = {
            "name": PUBLIC_IMAGE, "family": PUBLIC_FAMILY,
            "description": "Canonical, Ubuntu, 16.04 LTS (the kiln tiny system)",
        }
        if base_image:
            base_path = os.path.join(self.state_dir, "images", f"{PUBLIC_PROJECT}-{PUBLIC_IMAGE}.qcow2")
            os.link(base_image, base_path) if same_fs(base_image, self.state_dir) else shutil.copyfile(base_image, base_path)
            self.add_image(PUBLIC_PROJECT, public_image, base_path)
        else:
            # API-only runs: the image is listed but has no disk, so no
            # instance can boot from it (errors that come first still can).
            self.add_image(PUBLIC_PROJECT, public_image, None)
        # The exporter's worker: never booted, so it needs no disk.
        self.add_image(WORKER_PROJECT, {"name": WORKER_IMAGE, "family": WORKER_FAMILY,
                                        "description": "Debian 9 worker (fake-gce runs its exports itself)"}, None)
        self.hold_export = os.environ.get("FAKE_GCE_HOLD_EXPORT") == "1"
        for spec in args.image:
            where, _, source = spec.partition("=")
            project, _, name = where.partition("/")
            path = os.path.join(self.state_dir, "images", f"{project}-{name}.qcow2")
            subprocess.run(["qemu-img", "convert", "-O", "qcow2", source, path], check=True, capture_output=True)
            self.add_image(project, {"name": name}, path)

    def new_id(self):
        self.next_id += 1
        return str(self.next_id)

    def base_url(self):
        return f"http://127.0.0.1:{self.port}/compute/v1"

    def link(self, project, *parts):
        return "/".join([self.base_url(), "projects", project, *parts])

    def add_image(self, project, spec, path):
        size = qcow2_virtual_size(path) if path else 10 << 30
        image = {
            "kind": "compute#image",
            "id": self.new_id(),
            "creationTimestamp": now_rfc3339(),
            "name": spec["name"],
            "description": spec.get("description", ""),
            "sourceType": "RAW",
            "status": "READY",
            "archiveSizeBytes": str(os.path.getsize(path) if path else 0),
            "diskSizeGb": str(max(1, size >> 30)),
            "selfLink": self.link(project, "global", "images", spec["name"]),
            "labelFingerprint": "42WmSpB8rSM=",
            "storageLocations": spec.get("storageLocations") or ["eu"],
        }
        for key in ("family", "labels", "licenses", "guestOsFeatures", "sourceDisk", "sourceDiskId", "imageEncryptionKey"):
            if spec.get(key):
                image[key] = spec[key]
        image["_path"] = path
        self.images[(project, spec["name"])] = image
        return image

    # ------------------------------------------------------- operations

    def operation(self, project, scope, kind, target_link, target_id):
        name = f"operation-{int(time.time() * 1000)}-{secrets.token_hex(6)}"
        scope_parts = ["global"] if scope == "global" else ["zones", scope]
        op = {
            "kind": "compute#operation",
            "id": self.new_id(),
            "name": name,
            "operationType": kind,
            "targetLink": target_link,
            "targetId": target_id,
            "status": "PENDING",
            "user": "kiln-test@fake-gce.iam.gserviceaccount.com",
            "progress": 0,
            "insertTime": now_rfc3339(),
            "creationTimestamp": now_rfc3339(),
            "selfLink": self.link(project, *scope_parts, "operations", name),
        }
        if scope != "global":
            op["zone"] = self.link(project, "zones", scope)
        self.operations[(project, scope, name)] = op
        return op

    def op_running(self, op):
        with LOCK:
            op["status"] = "RUNNING"
            op["progress"] = 50
            op["startTime"] = now_rfc3339()

    def op_done(self, op, error=None, http_status=None):
        with LOCK:
            op["status"] = "DONE"
            op["progress"] = 100
            op.setdefault("startTime", now_rfc3339())
            op["endTime"] = now_rfc3339()
            if error:
                op["error"] = {"errors": [error]}
                op["httpErrorStatusCode"] = http_status or 400
                op["httpErrorMessage"] = {403: "FORBIDDEN", 404: "NOT FOUND", 409: "CONFLICT"}.get(http_status, "BAD REQUEST")

    def in_background(self, fn):
        threading.Thread(target=fn, daemon=True).start()

    # ------------------------------------------------------- images

    def image_get(self, project, name):
        image = self.images.get((project, name))
        if not image:
            raise ApiError(404, "notFound", f"The resource 'projects/{project}/global/images/{name}' was not found")
        return public(image)

    def image_from_family(self, project, family):
        candidates = [i for (p, _), i in self.images.items() if p == project and i.get("family") == family
                      and i.get("deprecated", {}).get("state") not in ("DEPRECATED", "OBSOLETE", "DELETED")]
        if not candidates:
            raise ApiError(404, "notFound", f"The resource 'projects/{project}/global/images/family/{family}' was not found")
        return public(max(candidates, key=lambda i: (i["creationTimestamp"], int(i["id"]))))

    def image_insert(self, project, body):
        name = body.get("name", "")
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'")
        if (project, name) in self.images:
            raise ApiError(409, "alreadyExists", f"The resource 'projects/{project}/global/images/{name}' already exists")
        for i, feature in enumerate(body.get("guestOsFeatures") or []):
            if feature.get("type") not in GUEST_OS_FEATURES:
                raise ApiError(400, "invalid", f"Invalid value for field 'resource.guestOsFeatures[{i}].type': '{feature.get('type')}'. Value must be one of {sorted(GUEST_OS_FEATURES)}")
        body = dict(body)
        if "imageEncryptionKey" in body:
            body["imageEncryptionKey"] = stored_encryption_key(body["imageEncryptionKey"])
        if "rawDisk" in body:
            return self.image_insert_raw(project, name, body)
        source = body.get("sourceDisk", "")
        m = re.search(r"projects/([^/]+)/zones/([^/]+)/disks/([^/]+)$", source)
        if not m or m.groups() not in self.disks:
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.sourceDisk': '{source}'. The referenced source disk resource cannot be found.")
        disk = self.disks[m.groups()]
        for inst in self.instances.values():
            if disk["selfLink"] in [d["source"] for d in inst.data["disks"]] and inst.data["status"] not in ("TERMINATED",):
                raise ApiError(400, "resourceInUseByAnotherResource",
                               f"The disk resource '{disk['selfLink']}' is already being used by '{inst.data['selfLink']}'")
        link = self.link(project, "global", "images", name)
        op = self.operation(project, "global", "insert", link, self.new_id())
        path = os.path.join(self.state_dir, "images", f"{project}-{name}.qcow2")

        def work():
            self.op_running(op)
            subprocess.run(["qemu-img", "convert", "-O", "qcow2", disk["_path"], path + ".tmp"], check=True)
            os.rename(path + ".tmp", path)
            with LOCK:
                spec = dict(body)
                spec["sourceDisk"] = disk["selfLink"]
                spec["sourceDiskId"] = disk["id"]
                self.add_image(project, spec, path)
            self.op_done(op)

        self.in_background(work)
        return op

    def image_insert_raw(self, project, name, body):
        """rawDisk.source: a .tar.gz in GCS holding disk.raw, as GCE takes it."""
        source = (body.get("rawDisk") or {}).get("source", "")
        m = re.fullmatch(r"https://(?:storage\.googleapis\.com|storage\.cloud\.google\.com)/([^/]+)/(.+)", source)
        obj = self.objects.get((m.group(1), urllib.parse.unquote(m.group(2)))) if m else None
        if obj is None:
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.rawDisk.source': '{source}'. The referenced Google Cloud Storage object does not exist or cannot be read.")
        link = self.link(project, "global", "images", name)
        op = self.operation(project, "global", "insert", link, self.new_id())
        path = os.path.join(self.state_dir, "images", f"{project}-{name}.qcow2")
        tarball = obj["_path"]

        def work():
            self.op_running(op)
            problem = unpack_raw_disk(tarball, path)
            if problem:
                return self.op_done(op, {"code": "INVALID_IMAGE_FILE", "message": problem}, 400)
            with LOCK:
                spec = dict(body)
                spec["sourceType"] = "RAW"
                self.add_image(project, spec, path)
            self.op_done(op)

        self.in_background(work)
        return op

    # ------------------------------------------------------- storage

    def generate_access_token(self, caller, target, body):
        """IAM Credentials generateAccessToken: any caller with a valid token
        may impersonate the accounts given with --service-account (as if it
        held roles/iam.serviceAccountTokenCreator on them); for any other
        account the API's 403, which does not say whether it exists."""
        if target not in self.impersonable:
            raise ApiError(403, "forbidden", f"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).", "PERMISSION_DENIED")
        if not body.get("scope"):
            raise ApiError(400, "badRequest", "Request contains an invalid argument: scope is required.", "INVALID_ARGUMENT")
        life = min(int(str(body.get("lifetime", "3600s")).rstrip("s") or 3600), 3600)
        token = "ya29.fake-impersonated-" + secrets.token_urlsafe(32)
        with LOCK:
            self.tokens[token] = time.time() + life
            self.principals[token] = target
        expire = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=life)
        return {"accessToken": token, "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def bucket_insert(self, project, body):
        name = body.get("name", "")
        if name in self.buckets:
            raise ApiError(409, "conflict", "Your previous request to create the named bucket succeeded and you already own it.")
        self.buckets[name] = {
            "kind": "storage#bucket", "id": name, "name": name,
            "selfLink": f"{self.storage_base()}/storage/v1/b/{name}",
            "projectNumber": "123456789012", "timeCreated": now_rfc3339(),
            "location": "US", "storageClass": "STANDARD",
        }
        return self.buckets[name]

    def storage_base(self):
        return f"http://127.0.0.1:{self.port}"

    def bucket_get(self, name):
        if name not in self.buckets:
            raise ApiError(404, "notFound", "The specified bucket does not exist.")
        return self.buckets[name]

    def object_get(self, bucket, name):
        self.bucket_get(bucket)
        obj = self.objects.get((bucket, name))
        if obj is None:
            raise ApiError(404, "notFound", f"No such object: {bucket}/{name}")
        return obj

    def object_delete(self, bucket, name):
        obj = self.object_get(bucket, name)
        del self.objects[(bucket, name)]
        try:
            os.unlink(obj["_path"])
        except OSError:
            pass

    def upload_start(self, bucket, query, headers):
        self.bucket_get(bucket)
        name = query.get("name", [""])[0]
        if not name:
            raise ApiError(400, "required", "Required")
        upload_id = "ADPycd" + secrets.token_urlsafe(24)
        total = headers.get("X-Upload-Content-Length")
        self.sessions[upload_id] = {
            "bucket": bucket, "name": name, "received": 0, "chunks": 0,
            "total": int(total) if total else None,
            "content_type": headers.get("X-Upload-Content-Type") or "application/octet-stream",
            "path": os.path.join(self.state_dir, "gcs", upload_id),
        }
        open(self.sessions[upload_id]["path"], "wb").close()
        return (f"{self.storage_base()}/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o"
                f"?uploadType=resumable&name={urllib.parse.quote(name, safe='')}&upload_id={upload_id}")

    def upload_finish(self, session):
        bucket, name = session["bucket"], session["name"]
        path = os.path.join(self.state_dir, "gcs", f"object-{secrets.token_hex(8)}")
        os.rename(session["path"], path)
        obj = {
            "kind": "storage#object", "id": f"{bucket}/{name}/1", "name": name, "bucket": bucket,
            "generation": str(int(time.time() * 1e6)), "metageneration": "1",
            "contentType": session["content_type"], "size": str(session["received"]),
            "md5Hash": base64.b64encode(hashlib.md5(open(path, "rb").read()).digest()).decode(),
            "timeCreated": now_rfc3339(), "updated": now_rfc3339(),
            "selfLink": f"{self.storage_base()}/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}",
            "mediaLink": f"{self.storage_base()}/download/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}?alt=media",
            "_path": path,
        }
        old = self.objects.get((bucket, name))
        if old:
            os.unlink(old["_path"])
        self.objects[(bucket, name)] = obj
        session["done"] = obj
        return public(obj)

    def image_delete(self, project, name):
        image = self.images.pop((project, name), None)
        if not image:
            raise ApiError(404, "notFound", f"The resource 'projects/{project}/global/images/{name}' was not found")
        op = self.operation(project, "global", "delete", image["selfLink"], image["id"])
        try:
            if image["_path"]:
                os.unlink(image["_path"])
        except OSError:
            pass
        self.op_done(op)
        return op

    # ------------------------------------------------------- instances

    def instance_insert(self, project, zone, body):
        name = body.get("name", "")
        if (project, zone, name) in self.instances:
            raise ApiError(409, "alreadyExists", f"The resource 'projects/{project}/zones/{zone}/instances/{name}' already exists")
        disks = body.get("disks") or []
        if len(disks) != 1 or "initializeParams" not in disks[0]:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.disks': exactly one boot disk with initializeParams is supported by fake-gce")
        params = disks[0]["initializeParams"]
        source = params.get("sourceImage", "")
        m = re.search(r"projects/([^/]+)/global/images/([^/]+)$", source)
        if not m or m.groups() not in self.images:
            raise ApiError(404, "notFound", f"The resource '{source}' was not found")
        image = self.images[m.groups()]
        disk_name = params.get("diskName") or name
        if (project, zone, disk_name) in self.disks:
            raise ApiError(409, "alreadyExists", f"The resource 'projects/{project}/zones/{zone}/disks/{disk_name}' already exists")
        size_gb = int(params.get("diskSizeGb") or image["diskSizeGb"])
        if size_gb < int(image["diskSizeGb"]):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.disks[0].initializeParams.diskSizeGb': '{size_gb}'. Requested disk size cannot be smaller than the image size ({image['diskSizeGb']} GB)")
        self.check_accelerators(project, zone, body)
        link = self.link(project, "zones", zone, "instances", name)
        self.instance_requests.append({
            "name": name, "guestAccelerators": body.get("guestAccelerators"),
            "minCpuPlatform": body.get("minCpuPlatform"), "scheduling": body.get("scheduling"),
            "metadataKeys": sorted(i.get("key") for i in (body.get("metadata") or {}).get("items") or []),
        })
        self.instances_created += 1
        inst_id = self.new_id()
        op = self.operation(project, zone, "insert", link, inst_id)
        failure = self.failures.get("instances.insert")
        if failure == "quota":
            region = zone.rsplit("-", 1)[0]
            self.op_done(op, {"code": "QUOTA_EXCEEDED",
                              "message": f"Quota 'CPUS' exceeded.  Limit: 0.0 in region {region}."}, 403)
            return op
        exporter = m.groups() == (WORKER_PROJECT, WORKER_IMAGE)
        if not image["_path"] and not exporter:
            raise ApiError(400, "invalid", f"fake-gce was started with --no-base-image: image '{source}' has no disk to boot")
        disk_path = os.path.join(self.state_dir, "disks", f"{project}-{zone}-{disk_name}.qcow2")
        os.makedirs(os.path.dirname(disk_path), exist_ok=True)
        backing = ["-b", image["_path"], "-F", "qcow2"] if image["_path"] else []
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *backing, disk_path, f"{size_gb}G"], check=True)
        disk = {
            "kind": "compute#disk", "id": self.new_id(), "creationTimestamp": now_rfc3339(), "name": disk_name,
            "sizeGb": str(size_gb), "zone": self.link(project, "zones", zone), "status": "READY",
            "selfLink": self.link(project, "zones", zone, "disks", disk_name),
            "sourceImage": image["selfLink"], "sourceImageId": image["id"],
            "type": self.link(project, "zones", zone, "diskTypes", params.get("diskType", "pd-standard").rsplit("/", 1)[-1]),
            "users": [link], "_path": disk_path,
        }
        self.disks[(project, zone, disk_name)] = disk
        inst = (Exporter if exporter else Instance)(self, project, zone, name, inst_id, body, disk)
        self.instances[(project, zone, name)] = inst

        def work():
            self.op_running(op)
            try:
                inst.start()
            except Exception as e:  # noqa: BLE001 - reported in the operation
                log(f"instance {name} did not start: {e}")
                inst.data["status"] = "TERMINATED"
                self.op_done(op, {"code": "ZONE_RESOURCE_POOL_EXHAUSTED", "message": f"fake-gce could not start the instance: {e}"}, 503)
                return
            self.op_done(op)

        self.in_background(work)
        return op

    def check_accelerators(self, project, zone, body):
        """guestAccelerators as GCE checks them: a type of this zone, a
        positive count, and no live migration."""
        accelerators = body.get("guestAccelerators") or []
        for i, acc in enumerate(accelerators):
            kind = acc.get("acceleratorType", "")
            m = re.search(r"(?:^|/)projects/([^/]+)/zones/([^/]+)/acceleratorTypes/([^/]+)$", kind)
            if not m or m.group(1) != project or m.group(2) != zone or m.group(3) not in ACCELERATOR_TYPES:
                raise ApiError(400, "invalid", f"Invalid value for field 'resource.guestAccelerators[{i}].acceleratorType': '{kind}'. Accelerator type does not exist in zone {zone}.")
            if int(acc.get("acceleratorCount") or 0) < 1:
                raise ApiError(400, "invalid", f"Invalid value for field 'resource.guestAccelerators[{i}].acceleratorCount': '{acc.get('acceleratorCount')}'. Must be greater than 0.")
        if accelerators and (body.get("scheduling") or {}).get("onHostMaintenance", "MIGRATE") != "TERMINATE":
            raise ApiError(400, "invalid", "Invalid value for field 'resource.scheduling.onHostMaintenance': 'MIGRATE'. Instances with guest accelerators do not support live migration.")

    def instance_set_metadata(self, project, zone, name, body):
        """instances.setMetadata: the whole item list, guarded by the
        fingerprint of the metadata it replaces (412 when stale)."""
        inst = self.find_instance(project, zone, name)
        current = inst.data["metadata"]
        if body.get("fingerprint") != current.get("fingerprint"):
            raise ApiError(412, "conditionNotMet", "Supplied fingerprint does not match current metadata fingerprint.", "FAILED_PRECONDITION")
        items = body.get("items") or []
        keys = [i.get("key") for i in items]
        if len(set(keys)) != len(keys):
            raise ApiError(400, "invalid", "Invalid value for field 'metadata.items': duplicate keys.")
        inst.data["metadata"] = {"kind": "compute#metadata", "items": items, "fingerprint": new_fingerprint()}
        self.metadata_sets.append({"instance": name, "keys": sorted(keys)})
        op = self.operation(project, zone, "setMetadata", inst.data["selfLink"], inst.data["id"])
        self.op_done(op)
        return op

    def find_instance(self, project, zone, name):
        inst = self.instances.get((project, zone, name))
        if not inst:
            raise ApiError(404, "notFound", f"The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found")
        return inst

    def instance_stop(self, project, zone, name):
        inst = self.find_instance(project, zone, name)
        op = self.operation(project, zone, "stop", inst.data["selfLink"], inst.data["id"])

        def work():
            self.op_running(op)
            inst.stop()
            self.op_done(op)

        self.in_background(work)
        return op

    def instance_delete(self, project, zone, name):
        inst = self.find_instance(project, zone, name)
        if self.failures.get("instances.delete") == "permission":
            raise ApiError(403, "forbidden", f"Required 'compute.instances.delete' permission for 'projects/{project}/zones/{zone}/instances/{name}'")
        op = self.operation(project, zone, "delete", inst.data["selfLink"], inst.data["id"])

        def work():
            self.op_running(op)
            inst.kill()
            with LOCK:
                self.instances.pop((project, zone, name), None)
                for d in inst.data["disks"]:
                    key = disk_key(d["source"])
                    disk = self.disks.get(key)
                    if disk:
                        disk["users"] = [u for u in disk.get("users", []) if u != inst.data["selfLink"]]
                        if d.get("autoDelete"):
                            self.drop_disk(key)
            self.op_done(op)

        self.in_background(work)
        return op

    def disk_from_image(self, project, zone, name, image_name, user):
        """`gcloud compute disks create NAME --image IMAGE`: a disk whose
        content is the image's, in use by `user` once attached."""
        image = self.images.get((project, image_name))
        if image is None or not image["_path"]:
            raise ApiError(404, "notFound", f"The resource 'projects/{project}/global/images/{image_name}' was not found")
        if (project, zone, name) in self.disks:
            raise ApiError(409, "alreadyExists", f"The resource 'projects/{project}/zones/{zone}/disks/{name}' already exists")
        path = os.path.join(self.state_dir, "disks", f"{project}-{zone}-{name}.qcow2")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", image["_path"], "-F", "qcow2", path], check=True)
        disk = {
            "kind": "compute#disk", "id": self.new_id(), "creationTimestamp": now_rfc3339(), "name": name,
            "sizeGb": image["diskSizeGb"], "zone": self.link(project, "zones", zone), "status": "READY",
            "selfLink": self.link(project, "zones", zone, "disks", name),
            "sourceImage": image["selfLink"], "sourceImageId": image["id"],
            "type": self.link(project, "zones", zone, "diskTypes", "pd-standard"),
            "users": [user], "_path": path,
        }
        self.disks[(project, zone, name)] = disk
        return disk

    def put_object(self, bucket, name, source, content_type):
        """An object with `source`'s bytes (gsutil cp)."""
        self.bucket_get(bucket)
        path = os.path.join(self.state_dir, "gcs", f"object-{secrets.token_hex(8)}")
        shutil.copyfile(source, path)
        session = {"bucket": bucket, "name": name, "path": path, "received": os.path.getsize(path),
                   "content_type": content_type}
        return self.upload_finish(session)

    def drop_disk(self, key):
        disk = self.disks.pop(key, None)
        if disk:
            try:
                os.unlink(disk["_path"])
            except OSError:
                pass

    def disk_get(self, project, zone, name):
        disk = self.disks.get((project, zone, name))
        if not disk:
            raise ApiError(404, "notFound", f"The resource 'projects/{project}/zones/{zone}/disks/{name}' was not found")
        return public(disk)

    def disk_delete(self, project, zone, name):
        disk = self.disks.get((project, zone, name))
        if not disk:
            raise ApiError(404, "notFound", f"The resource 'projects/{project}/zones/{zone}/disks/{name}' was not found")
        if disk.get("users"):
            raise ApiError(400, "resourceInUseByAnotherResource",
                           f"The disk resource '{disk['selfLink']}' is already being used by '{disk['users'][0]}'")
        op = self.operation(project, zone, "delete", disk["selfLink"], disk["id"])
        self.drop_disk((project, zone, name))
        self.op_done(op)
        return op

    def summary(self):
        """Everything that exists, for tests (not part of compute v1)."""
        with LOCK:
            return {
                "instances": sorted(f"{p}/{z}/{n}" for p, z, n in self.instances),
                "disks": sorted(f"{p}/{z}/{n}" for p, z, n in self.disks),
                "images": sorted([{"project": p, "name": n, "family": i.get("family"), "labels": i.get("labels"),
                                  "guestOsFeatures": i.get("guestOsFeatures"), "sourceType": i.get("sourceType"),
                                  "imageEncryptionKey": i.get("imageEncryptionKey"),
                                  "path": i["_path"]} for (p, n), i in self.images.items()],
                                 key=lambda i: (i["project"], i["name"])),
                "qemu_pids": sorted(i.proc.pid for i in self.instances.values() if i.proc and i.proc.poll() is None),
                "all_qemu_pids": sorted(self.all_pids),
                "tokens_issued": self.tokens_issued,
                "instances_created": self.instances_created,
                "instance_requests": list(self.instance_requests),
                "metadata_sets": list(self.metadata_sets),
                "buckets": sorted(self.buckets),
                "objects": sorted(f"{b}/{n}" for b, n in self.objects),
                "object_files": {f"{b}/{n}": o["_path"] for (b, n), o in self.objects.items()},
                "gcs_requests": list(self.gcs_requests),
                "callers": sorted(self.callers),
            }

    def shutdown(self):
        for inst in list(self.instances.values()):
            inst.kill()


def metadata_token_answer(emu, email, path):
    """The service-account paths of a metadata server for `email`: its
    email and a token the emulator accepts, as GCE's server answers them."""
    prefix = "/computeMetadata/v1/instance/service-accounts/default/"
    if path == prefix + "email":
        return email
    if path == prefix + "token":
        token = "ya29.fake-metadata-" + secrets.token_urlsafe(32)
        life = emu.args.token_lifetime
        with LOCK:
            emu.tokens[token] = time.time() + life
            emu.principals[token] = email
            emu.tokens_issued += 1
        return json.dumps({"access_token": token, "expires_in": life, "token_type": "Bearer"})
    return None


def start_host_metadata(emu, email):
    """A metadata server on 127.0.0.1 as if the caller ran on an instance
    whose service account is `email` (point GCE_METADATA_HOST at it)."""

    class HostMetadata(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = urllib.parse.urlparse(self.path).path
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.reply(403, "Missing required header \"Metadata-Flavor\": \"Google\"\n")
            answer = metadata_token_answer(emu, email, path)
            if answer is None:
                return self.reply(404, "not found\n")
            self.reply(200, answer)

        def reply(self, code, text):
            body = text.encode()
            self.send_response(code)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Type", "application/json" if text.startswith("{") else "application/text")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            log("host metadata: " + fmt % args)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostMetadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def unpack_raw_disk(tarball, image_path):
    """disk.raw out of a .tar.gz → a qcow2 at image_path; a problem as GCE
    words it, or None."""
    import gzip
    import tarfile
    try:
        with gzip.open(tarball, "rb") as f:
            header = f.read(512)
    except OSError:
        return "The image file is not a gzip-compressed tar archive."
    # GCE takes GNU tar ("ustar  \0" magic), not POSIX ustar or pax.
    if header[257:265] != b"ustar  \0":
        return "The tar archive is not in GNU (oldgnu) format."
    work = image_path + ".raw"
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            names = tar.getnames()
            if names != ["disk.raw"]:
                return f"The tar archive must hold exactly one file named disk.raw; it holds {names}."
            src = tar.extractfile("disk.raw")
            with open(work, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", work, image_path + ".tmp"],
                       check=True, capture_output=True)
        os.rename(image_path + ".tmp", image_path)
        return None
    except (OSError, tarfile.TarError, subprocess.CalledProcessError) as e:
        return f"The image file cannot be read: {e}"
    finally:
        if os.path.exists(work):
            os.unlink(work)


def disk_key(link):
    m = re.search(r"projects/([^/]+)/zones/([^/]+)/disks/([^/]+)$", link)
    return m.groups() if m else None


def new_fingerprint():
    """A metadata fingerprint: 8 random bytes in base64, as GCE's look."""
    return base64.b64encode(secrets.token_bytes(8)).decode()


def stored_encryption_key(key):
    """imageEncryptionKey as GCE keeps it: a KMS key name as given; a raw
    key (base64 of 32 bytes) only as the base64 of its SHA-256, never the
    key itself."""
    if not isinstance(key, dict) or len([k for k in ("kmsKeyName", "rawKey") if key.get(k)]) != 1:
        raise ApiError(400, "invalid", "Invalid value for field 'resource.imageEncryptionKey': exactly one of kmsKeyName and rawKey must be set.")
    if key.get("kmsKeyName"):
        if not re.fullmatch(r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+(/cryptoKeyVersions/[^/]+)?", key["kmsKeyName"]):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.imageEncryptionKey.kmsKeyName': '{key['kmsKeyName']}'. Invalid resource name.")
        return {"kmsKeyName": key["kmsKeyName"]}
    try:
        raw = base64.b64decode(key["rawKey"], validate=True)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        raise ApiError(400, "customerEncryptionKeyIsIncorrectlyFormatted", "Key is incorrectly formatted: expected a base64 encoded 256-bit key.")
    return {"sha256": base64.b64encode(hashlib.sha256(raw).digest()).decode()}


def public(resource):
    return {k: v for k, v in resource.items() if not k.startswith("_")}


def same_fs(a, b):
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def qcow2_virtual_size(path):
    out = subprocess.run(["qemu-img", "info", "--output=json", "-U", path], check=True, capture_output=True)
    return int(json.loads(out.stdout)["virtual-size"])


def free_loopback_22():
    """A loopback address whose port 22 is free, for one instance's sshd."""
    for _ in range(200):
        addr = f"127.77.{random.randint(0, 255)}.{random.randint(1, 254)}"
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, 22))
            return addr
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no loopback address with a free port 22")


class Instance:
    def __init__(self, emu, project, zone, name, inst_id, body, disk):
        self.emu = emu
        self.project = project
        self.proc = None
        # Named by id: QMP's Unix socket path must stay under 108 bytes.
        self.dir = os.path.join(emu.state_dir, "instances", inst_id)
        os.makedirs(self.dir, exist_ok=True)
        self.metadata_server = None
        self.nat_ip = free_loopback_22()
        boot = (body.get("disks") or [{}])[0]
        self.data = {
            "kind": "compute#instance",
            "id": inst_id,
            "creationTimestamp": now_rfc3339(),
            "name": name,
            "description": body.get("description", ""),
            "tags": {"items": body.get("tags", {}).get("items", []), "fingerprint": "42WmSpB8rSM="},
            "machineType": body.get("machineType", ""),
            "status": "PROVISIONING",
            "zone": emu.link(project, "zones", zone),
            "canIpForward": False,
            "networkInterfaces": [{
                "kind": "compute#networkInterface",
                "network": (body.get("networkInterfaces") or [{}])[0].get("network", ""),
                "networkIP": "169.254.169.15",
                "name": "nic0",
                "accessConfigs": [] if not (body.get("networkInterfaces") or [{}])[0].get("accessConfigs") else [{
                    "kind": "compute#accessConfig", "type": "ONE_TO_ONE_NAT", "name": "External NAT",
                    "natIP": self.nat_ip, "networkTier": "PREMIUM"}],
            }],
            "disks": [{
                "kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE",
                "source": disk["selfLink"], "deviceName": boot.get("deviceName", "persistent-disk-0"),
                "index": 0, "boot": True, "autoDelete": bool(boot.get("autoDelete", False)),
                "interface": "SCSI", "diskSizeGb": disk["sizeGb"],
            }],
            "metadata": {"kind": "compute#metadata", "items": (body.get("metadata") or {}).get("items") or [],
                         "fingerprint": new_fingerprint()},
            "serviceAccounts": body.get("serviceAccounts", []),
            "selfLink": emu.link(project, "zones", zone, "instances", name),
            "scheduling": body.get("scheduling", {}),
            "labels": body.get("labels", {}),
            **({"guestAccelerators": body["guestAccelerators"]} if body.get("guestAccelerators") else {}),
            **({"minCpuPlatform": body["minCpuPlatform"]} if body.get("minCpuPlatform") else {}),
        }
        self.disk = disk

    def metadata_value(self, key):
        for item in self.data["metadata"].get("items") or []:
            if item.get("key") == key:
                return item.get("value", "")
        return None

    def start(self):
        self.data["status"] = "STAGING"
        inst = self

        class Metadata(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                prefix = "/computeMetadata/v1/instance/attributes/"
                path = urllib.parse.urlparse(self.path).path
                if self.headers.get("Metadata-Flavor") != "Google":
                    return self.reply(403, "Missing required header \"Metadata-Flavor\": \"Google\"\n")
                if path == prefix:
                    keys = [i["key"] for i in inst.data["metadata"].get("items") or []]
                    return self.reply(200, "".join(k + "\n" for k in keys))
                if path.startswith(prefix):
                    value = inst.metadata_value(path[len(prefix):])
                    if value is not None:
                        return self.reply(200, value)
                if path == "/computeMetadata/v1/instance/hostname":
                    return self.reply(200, f"{inst.data['name']}.c.internal")
                accounts = inst.data.get("serviceAccounts") or [{}]
                email = accounts[0].get("email", "default")
                if email == "default":
                    email = f"{inst.project}-compute@developer.gserviceaccount.com"
                answer = metadata_token_answer(inst.emu, email, path)
                if answer is not None:
                    return self.reply(200, answer)
                self.reply(404, "not found\n")

            def reply(self, code, text):
                body = text.encode()
                self.send_response(code)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", "application/text")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):
                log(f"metadata {inst.data['name']}: " + fmt % args)

        self.metadata_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
        threading.Thread(target=self.metadata_server.serve_forever, daemon=True).start()
        mport = self.metadata_server.server_address[1]
        relay = f"cmd:{sys.executable} {RELAY} {mport}"
        netdev = ("user,id=n0,net=169.254.169.0/24,"
                  f"hostfwd=tcp:{self.nat_ip}:22-:22,guestfwd=tcp:169.254.169.254:80-{relay}")
        self.serial = os.path.join(self.dir, "serial.log")
        self.qmp = os.path.join(self.dir, "qmp.sock")
        self.proc = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-display", "none", "-no-reboot",
             "-drive", f"file={self.disk['_path']},if=virtio,format=qcow2",
             "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0",
             "-serial", f"file:{self.serial}", "-qmp", f"unix:{self.qmp},server=on,wait=off"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "qemu.log"), "wb"),
            preexec_fn=os.setsid,
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(self.qmp):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(self.dir, "qemu.log"), "rb") as f:
                    raise RuntimeError("QEMU did not start: " + f.read().decode(errors="replace"))
            time.sleep(0.05)
        self.emu.all_pids.append(self.proc.pid)
        self.data["status"] = "RUNNING"
        self.data["lastStartTimestamp"] = now_rfc3339()
        log(f"instance {self.data['name']} running (pid {self.proc.pid}, ssh {self.nat_ip}:22)")
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self):
        proc = self.proc
        proc.wait()
        with LOCK:
            if self.proc is proc and self.data["status"] == "RUNNING":
                self.data["status"] = "TERMINATED"

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            self.data["status"] = "TERMINATED"
            return
        self.data["status"] = "STOPPING"
        try:
            s, cmd = qmp_connect(self.qmp)
            cmd("system_powerdown")
            s.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.kill()
        self.data["status"] = "TERMINATED"
        self.data["lastStopTimestamp"] = now_rfc3339()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.metadata_server:
            self.metadata_server.shutdown()
            self.metadata_server = None
        self.data["status"] = "TERMINATED"


class Exporter(Instance):
    """An instance of the worker image running googlecompute-export's
    startup script: the emulator does what the script does (see the module
    documentation) instead of booting a guest that would."""

    def __init__(self, *a):
        super().__init__(*a)
        self.killed = threading.Event()
        self.serial = os.path.join(self.dir, "serial.log")
        open(self.serial, "w").close()
        self.lines = []

    def start(self):
        self.data["status"] = "RUNNING"
        self.data["lastStartTimestamp"] = now_rfc3339()
        threading.Thread(target=self.run_script, daemon=True).start()

    def say(self, line):
        self.lines.append(line)
        with open(self.serial, "a") as f:
            f.write(f"startup-script: {line}\n")
        log(f"exporter {self.data['name']}: {line}")

    def set_status(self, value):
        with LOCK:
            items = [i for i in self.data["metadata"].get("items") or [] if i.get("key") != "startup-script-status"]
            items.append({"key": "startup-script-status", "value": value})
            self.data["metadata"]["items"] = items
            self.data["metadata"]["fingerprint"] = new_fingerprint()

    def run_script(self):
        emu, project = self.emu, self.project
        zone = self.data["zone"].rsplit("/", 1)[-1]
        image_name = self.metadata_value("image_name") or ""
        name = self.metadata_value("name") or self.data["name"]
        paths = (self.metadata_value("paths") or "").split()
        disk_name = f"{name}-toexport"
        work = os.path.join(self.dir, "export")
        os.makedirs(work, exist_ok=True)
        self.say(f"Image name - {image_name}; export paths - {' '.join(paths)}")
        try:
            self.say("Creating disk from image to be exported...")
            with LOCK:
                disk = emu.disk_from_image(project, zone, disk_name, image_name, self.data["selfLink"])
                self.data["disks"].append({
                    "kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE",
                    "source": disk["selfLink"], "deviceName": "toexport", "index": 1, "boot": False,
                    "autoDelete": False, "interface": "SCSI", "diskSizeGb": disk["sizeGb"],
                })
            self.say("Attached the disk as toexport")
            if emu.hold_export:
                self.killed.wait()
            if self.killed.is_set():
                return
            self.say("GCEExport: Running export tool.")
            if emu.failures.get("export") == "script":
                raise RuntimeError(f"ExportFailed: Failed to export disk source to {paths[0]}.")
            raw = os.path.join(work, "disk.raw")
            subprocess.run(["qemu-img", "convert", "-O", "raw", disk["_path"], raw], check=True, capture_output=True)
            tarball = os.path.join(work, "root.tar.gz")
            subprocess.run(["tar", "--format=oldgnu", "-Sczf", tarball, "-C", work, "disk.raw"], check=True, capture_output=True)
            os.unlink(raw)
            if self.killed.is_set():
                return
            for path in paths:
                bucket, _, obj = path[len("gs://"):].partition("/")
                self.say(f"Copying archive image to {path}...")
                try:
                    with LOCK:
                        emu.put_object(bucket, obj, tarball, "application/x-gzip")
                except ApiError as e:
                    raise RuntimeError(f"Failed to copy image to {path}: {e.message}")
            self.say("ExportSuccess")
            with LOCK:
                self.data["disks"] = [d for d in self.data["disks"] if d["source"] != disk["selfLink"]]
                disk["users"] = []
                emu.drop_disk((project, zone, disk_name))
            self.set_status("done")
        except (RuntimeError, ApiError, subprocess.CalledProcessError) as e:
            self.say(str(getattr(e, "message", e)))
            log_file = os.path.join(work, "exporter.log")
            with open(log_file, "w") as f:
                f.write("".join(line + "\n" for line in self.lines))
            for path in paths:
                bucket, _, obj = path[len("gs://"):].partition("/")
                try:
                    with LOCK:
                        emu.put_object(bucket, obj + ".exporter.log", log_file, "text/plain")
                except ApiError:
                    pass
            self.set_status("error")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def stop(self):
        self.kill()

    def kill(self):
        self.killed.set()
        self.data["status"] = "TERMINATED"


# ---------------------------------------------------------------- OAuth


def mint_key(emu, path, remember=True):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    email = f"kiln-test-{secrets.token_hex(3)}@fake-project.iam.gserviceaccount.com"
    if not remember and emu.keys:
        # A known account with a key it never had: only the signature check
        # can refuse it.
        email = next(iter(emu.keys))
    if remember:
        emu.keys[email] = key.public_key()
    doc = {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": str(random.randint(10**20, 10**21)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": f"http://127.0.0.1:{emu.port}/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + urllib.parse.quote(email),
    }
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=2)
    os.rename(path + ".tmp", path)


def exchange_assertion(emu, form):
    """RFC 7523 JWT bearer grant, as oauth2.googleapis.com/token answers it."""
    def bad(desc):
        raise OAuthError(400, "invalid_grant", desc)

    if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        raise OAuthError(400, "unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""))
    parts = form.get("assertion", "").split(".")
    if len(parts) != 3:
        bad("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except ValueError:
        bad("Invalid JWT Signature.")
    if header.get("alg") != "RS256":
        bad("Invalid JWT Signature.")
    public_key = emu.keys.get(claims.get("iss"))
    if public_key is None:
        raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
    try:
        public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        bad("Invalid JWT Signature.")
    now = time.time()
    if claims.get("aud") != f"http://127.0.0.1:{emu.port}/token":
        bad("Invalid JWT: aud must be the token URI.")
    if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0) + 300) or claims["exp"] - claims["iat"] > 3600:
        bad("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
    if not claims.get("scope"):
        bad("Invalid JWT: scope is required.")
    token = "ya29.fake-" + secrets.token_urlsafe(32)
    life = emu.args.token_lifetime
    emu.tokens[token] = now + life
    emu.principals[token] = claims["iss"]
    emu.tokens_issued += 1
    return {"access_token": token, "expires_in": life, "token_type": "Bearer"}


class OAuthError(Exception):
    def __init__(self, code, error, description):
        super().__init__(description)
        self.code = code
        self.error = error
        self.description = description


# ---------------------------------------------------------------- HTTP


def paginate(items, query, kind, self_link):
    max_results = int(query.get("maxResults", ["500"])[0])
    start = int(query.get("pageToken", ["0"])[0] or 0)
    page = items[start:start + max_results]
    out = {"kind": kind, "id": self_link, "items": page, "selfLink": self_link}
    if start + max_results < len(items):
        out["nextPageToken"] = str(start + max_results)
    if not page:
        del out["items"]
    return out


def filter_items(items, query):
    """compute v1's `filter` for the simple `name = x` / `family = x` forms."""
    text = query.get("filter", [""])[0].strip()
    if not text:
        return items
    m = re.fullmatch(r"\(?\s*(\w+)\s*(=|!=|eq|ne)\s*\"?([^\")]*)\"?\s*\)?", text)
    if not m:
        raise ApiError(400, "invalid", f"Invalid value for field 'filter': '{text}'. Invalid list filter expression.")
    field, op, value = m.groups()
    if op in ("=", "!="):
        keep = [i for i in items if (str(i.get(field, "")) == value) == (op == "=")]
    else:
        keep = [i for i in items if bool(re.fullmatch(value, str(i.get(field, "")))) == (op == "eq")]
    return keep


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    emu = None

    def log_message(self, fmt, *args):
        log(fmt % args)

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    def reply_raw(self, code, headers=(), data=b""):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def dispatch(self, method):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        raw = self.body()
        try:
            if url.path == "/token" and method == "POST":
                form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
                return self.reply(200, exchange_assertion(self.emu, form))
            if url.path == "/emulator/v1/state" and method == "GET":
                return self.reply(200, self.emu.summary())
            m = re.fullmatch(r"/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken", url.path)
            if m and method == "POST":
                caller = self.authorize()
                return self.reply(200, self.emu.generate_access_token(caller, urllib.parse.unquote(m.group(1)), json.loads(raw or b"{}")))
            if url.path.startswith(("/storage/v1/", "/upload/storage/v1/", "/download/storage/v1/")):
                return self.storage(method, url.path, query, raw)
            if url.path.startswith("/compute/v1/"):
                self.authorize()
                with LOCK:
                    result = self.compute(method, url.path[len("/compute/v1/"):].split("/"), query, raw)
                return self.reply(200, result)
            raise ApiError(404, "notFound", f"fake-gce does not serve {method} {url.path}")
        except OAuthError as e:
            self.reply(e.code, {"error": e.error, "error_description": e.description})
        except ApiError as e:
            self.reply(e.code, e.body())

    def authorize(self):
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if not token or self.emu.tokens.get(token, 0) < time.time():
            raise ApiError(401, "authError", "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "UNAUTHENTICATED")
        caller = self.emu.principals.get(token)
        if not self.path.startswith("/v1/projects/-/serviceAccounts/"):
            with LOCK:
                self.emu.callers.add(caller)
        return caller

    def compute(self, method, parts, query, raw):
        emu = self.emu
        body = json.loads(raw) if raw else {}
        if len(parts) < 3 or parts[0] != "projects":
            raise ApiError(404, "notFound", "Not Found")
        project, rest = parts[1], parts[2:]
        if rest[0] == "global":
            kind = rest[1] if len(rest) > 1 else ""
            if kind == "images":
                if len(rest) == 2 and method == "GET":
                    items = sorted((public(i) for (p, _), i in emu.images.items() if p == project), key=lambda i: i["name"])
                    return paginate(filter_items(items, query), query, "compute#imageList", emu.link(project, "global", "images"))
                if len(rest) == 2 and method == "POST":
                    return emu.image_insert(project, body)
                if len(rest) == 4 and rest[2] == "family" and method == "GET":
                    return emu.image_from_family(project, rest[3])
                if len(rest) == 3 and method == "GET":
                    return emu.image_get(project, rest[2])
                if len(rest) == 3 and method == "DELETE":
                    return emu.image_delete(project, rest[2])
            if kind == "operations" and len(rest) >= 3:
                return self.operation(project, "global", rest[2], len(rest) == 4 and rest[3] == "wait")
        if rest[0] == "zones" and len(rest) >= 3:
            zone, kind = rest[1], rest[2]
            if kind == "instances":
                if len(rest) == 3 and method == "POST":
                    return emu.instance_insert(project, zone, body)
                if len(rest) == 3 and method == "GET":
                    items = sorted((i.data for (p, z, _), i in emu.instances.items() if (p, z) == (project, zone)), key=lambda i: i["name"])
                    return paginate(filter_items(items, query), query, "compute#instanceList", emu.link(project, "zones", zone, "instances"))
                if len(rest) == 4 and method == "GET":
                    return emu.find_instance(project, zone, rest[3]).data
                if len(rest) == 4 and method == "DELETE":
                    return emu.instance_delete(project, zone, rest[3])
                if len(rest) == 5 and rest[4] == "setMetadata" and method == "POST":
                    return emu.instance_set_metadata(project, zone, rest[3], body)
                if len(rest) == 5 and rest[4] == "stop" and method == "POST":
                    return emu.instance_stop(project, zone, rest[3])
                if len(rest) == 5 and rest[4] == "serialPort" and method == "GET":
                    inst = emu.find_instance(project, zone, rest[3])
                    with open(inst.serial, "rb") as f:
                        return {"kind": "compute#serialPortOutput", "contents": f.read().decode(errors="replace")}
            if kind == "disks":
                if len(rest) == 3 and method == "GET":
                    items = sorted((public(d) for (p, z, _), d in emu.disks.items() if (p, z) == (project, zone)), key=lambda d: d["name"])
                    return paginate(filter_items(items, query), query, "compute#diskList", emu.link(project, "zones", zone, "disks"))
                if len(rest) == 4 and method == "GET":
                    return emu.disk_get(project, zone, rest[3])
                if len(rest) == 4 and method == "DELETE":
                    return emu.disk_delete(project, zone, rest[3])
            if kind == "operations" and len(rest) >= 4:
                return self.operation(project, zone, rest[3], len(rest) == 5 and rest[4] == "wait")
        raise ApiError(404, "notFound", f"fake-gce does not serve {method} projects/{project}/{'/'.join(rest)}")

    def storage(self, method, path, query, raw):
        """The Cloud Storage JSON API's parts kiln uses."""
        emu = self.emu
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[0] == "upload" and "upload_id" in query:
            # The session URI authorises the upload by itself, as on GCS.
            return self.upload_chunk(query["upload_id"][0], raw)
        self.authorize()
        with LOCK:
            if parts[0] == "upload" and method == "POST" and len(parts) == 6 and parts[5] == "o":
                if query.get("uploadType", [""])[0] != "resumable":
                    raise ApiError(400, "invalid", "kiln's emulator serves uploadType=resumable only")
                location = emu.upload_start(parts[4], query, self.headers)
                emu.gcs_requests.append({"method": "POST", "upload": "start"})
                return self.reply_raw(200, [("Location", location)])
            if parts[0] == "download" and len(parts) == 7 and method == "GET":
                obj = emu.object_get(parts[4], parts[6])
                with open(obj["_path"], "rb") as f:
                    return self.reply_raw(200, [("Content-Type", obj["contentType"])], f.read())
            rest = parts[2:]  # storage/v1/...
            if rest == ["b"] and method == "POST":
                return self.reply(200, emu.bucket_insert(query.get("project", [""])[0], json.loads(raw or b"{}")))
            if len(rest) == 2 and rest[0] == "b" and method == "GET":
                return self.reply(200, emu.bucket_get(rest[1]))
            if len(rest) == 4 and rest[0] == "b" and rest[2] == "o":
                if method == "GET" and query.get("alt", [""])[0] == "media":
                    obj = emu.object_get(rest[1], rest[3])
                    with open(obj["_path"], "rb") as f:
                        return self.reply_raw(200, [("Content-Type", obj["contentType"])], f.read())
                if method == "GET":
                    return self.reply(200, public(emu.object_get(rest[1], rest[3])))
                if method == "DELETE":
                    emu.object_delete(rest[1], rest[3])
                    emu.gcs_requests.append({"method": "DELETE", "object": f"{rest[1]}/{rest[3]}"})
                    return self.reply_raw(204)
        raise ApiError(404, "notFound", f"fake-gce does not serve {method} {path}")

    def upload_chunk(self, upload_id, raw):
        """A PUT to a session URI: a chunk (`bytes S-E/T`), a status query
        (`bytes */T`), answered 308 + Range while incomplete."""
        emu = self.emu
        with LOCK:
            session = emu.sessions.get(upload_id)
        if session is None:
            raise ApiError(404, "notFound", "No such upload session.")
        if session.get("done"):
            return self.reply(200, public(session["done"]))
        header = self.headers.get("Content-Range", "")
        m = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", header.strip())
        if not m:
            raise ApiError(400, "invalid", f"Failed to parse Content-Range header.")
        start, end, total = m.groups()
        if total != "*":
            session["total"] = int(total)
        entry = {"method": "PUT", "range": header, "held": False}
        if start is not None:
            start, end = int(start), int(end)
            if end - start + 1 != len(raw):
                raise ApiError(400, "invalid", "The Content-Range does not match the number of bytes sent.")
            session["chunks"] += 1
            if emu.hold_chunk and session["chunks"] == emu.hold_chunk and not emu.held:
                # Read, never persisted, never answered: an interrupted chunk.
                emu.held = True
                entry["held"] = True
                emu.gcs_requests.append(entry)
                while True:
                    time.sleep(3600)
            received = session["received"]
            if start > received:
                # A gap: GCS keeps what it had and says so.
                entry["gap"] = True
            else:
                with open(session["path"], "r+b") as f:
                    f.seek(start)
                    f.write(raw)
                session["received"] = max(received, end + 1)
        emu.gcs_requests.append(entry)
        if session["total"] is not None and session["received"] == session["total"]:
            with LOCK:
                return self.reply(200, emu.upload_finish(session))
        headers = [("Range", f"bytes=0-{session['received'] - 1}")] if session["received"] else []
        return self.reply_raw(308, headers)

    def operation(self, project, scope, name, wait):
        op = self.emu.operations.get((project, scope, name))
        if not op:
            where = "global" if scope == "global" else f"zones/{scope}"
            raise ApiError(404, "notFound", f"The resource 'projects/{project}/{where}/operations/{name}' was not found")
        if wait:
            # operations.wait returns when DONE or after about two minutes;
            # the lock is released while waiting.
            deadline = time.monotonic() + 120
            LOCK.release()
            try:
                while op["status"] != "DONE" and time.monotonic() < deadline:
                    time.sleep(0.2)
            finally:
                LOCK.acquire()
        return dict(op)


def main():
    parser = argparse.ArgumentParser(description="a GCE emulator for kiln's tests")
    parser.add_argument("--iso", help="the tiny installer ISO (default: scripts/build-tiny-installer)")
    parser.add_argument("--cache", default=os.path.join(REPO, "iso-cache"))
    parser.add_argument("--state", help="where images, disks and instances live (default: a temporary directory)")
    parser.add_argument("--write-key", action="append", default=[], help="write a service-account key file it accepts")
    parser.add_argument("--write-unknown-key", action="append", default=[],
                        help="write a well-formed key it does not know (for the account of the first --write-key)")
    parser.add_argument("--fail", action="append", default=[], help="OPERATION=KIND, e.g. instances.insert=quota")
    parser.add_argument("--host-metadata", metavar="EMAIL", help="also serve a metadata server on 127.0.0.1 for an instance running as EMAIL (for GCE_METADATA_HOST)")
    parser.add_argument("--service-account", action="append", default=[], help="an account any valid token may impersonate (IAM Credentials generateAccessToken)")
    parser.add_argument("--bucket", action="append", default=[], help="a Cloud Storage bucket that exists from the start")
    parser.add_argument("--token-lifetime", type=int, default=3599, help="expires_in of the tokens it issues, in seconds")
    parser.add_argument("--image", action="append", default=[], metavar="PROJECT/NAME=FILE", help="an image made from a disk file")
    parser.add_argument("--no-base-image", action="store_true", help="no base image: the public image has no disk (API-only tests, no VM)")
    args = parser.parse_args()
    args.fail += [f for f in os.environ.get("FAKE_GCE_FAIL", "").split(",") if f]
    own_state = args.state is None
    if own_state:
        args.state = tempfile.mkdtemp(prefix="fake-gce-")
    base = None
    if not args.no_base_image:
        iso = args.iso
        if not iso:
            out = subprocess.run([os.path.join(REPO, "scripts", "build-tiny-installer")], check=True, capture_output=True, text=True)
            iso = out.stdout.splitlines()[0]
        base = build_base_image(iso, args.cache)
        print("fake-gce: base image ready", flush=True)
    emu = Emulator(args, base)
    Handler.emu = emu
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    emu.port = server.server_address[1]
    for bucket in args.bucket:
        emu.bucket_insert("fake-project", {"name": bucket})
    for path in args.write_key:
        mint_key(emu, path)
    for path in args.write_unknown_key:
        mint_key(emu, path, remember=False)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    if args.host_metadata:
        port = start_host_metadata(emu, args.host_metadata)
        print(f"fake-gce: metadata server on 127.0.0.1:{port}", flush=True)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"fake-gce: listening on http://127.0.0.1:{emu.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        emu.shutdown()
        if own_state:
            shutil.rmtree(args.state, ignore_errors=True)


if __name__ == "__main__":
    main()
