"""moto in server mode, plus the EC2 VM Import calls moto 5.2.6 lacks.

Started by kiln's tests (and by hand: see README.md here) on 127.0.0.1
with port 0; prints one JSON line with the port (and, with --auth, the
access key of an IAM user that may do everything) and serves until killed.

Added, following the EC2 API reference's XML shapes:
  ImportImage, DescribeImportImageTasks.
The import really reads the uploaded object from moto's S3 (it must exist
and look like the declared format: an MBR boot signature for RAW, the
magic of VMDK/VHD/VHDX, a tar for OVA) and registers an AMI in moto's EC2
backend, so DescribeImages, CopyImage, CreateTags and ModifyImageAttribute
work on it as on any image. A task reports `active` twice, then ends
`completed` or `deleted` with AWS's status message.

Test hooks (environment):
  FAKE_AWS_LOG=path        one JSON line per request (method, path, query, action)
  FAKE_AWS_HOLD_PART=N     the first UploadPart numbered N is read and then
                           never answered (logged as "held"), to interrupt
                           an upload at a known point
  POST /_fake_aws/hold?bucket=B&part=N
                           the same for bucket B only, set while running (one
                           server shared by many tests, each with its bucket)
  --exit-on-stdin-eof      exit when stdin closes: a test binary that shares
                           one server keeps its stdin open and, by ending
                           (however it ends), stops it; no orphan is left
"""

import argparse
import io
import json
import os
import re
import sys
import threading
import urllib.parse
import uuid

parser = argparse.ArgumentParser()
parser.add_argument("--auth", action="store_true", help="enforce IAM authentication")
parser.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin is closed")
args = parser.parse_args()
if args.auth:
    # Read by moto at import time: every request must then be signed by a
    # known key, with a valid signature.
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"

from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.ec2.models import ec2_backends  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
)
from moto.s3.models import s3_backends  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

ACCOUNT = DEFAULT_ACCOUNT_ID
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
LOG = os.environ.get("FAKE_AWS_LOG")
HOLD_PART = os.environ.get("FAKE_AWS_HOLD_PART")
lock = threading.Lock()
held = threading.Event()
holds = {}  # bucket -> part number to hold once (per-bucket hook)
tasks = {}


def log(entry):
    if LOG:
        with lock, open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")


def esc(text):
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def ec2_error(code, message, status=400):
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{esc(message)}</Message>"
        f"</Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    )
    return status, body


def region_of(environ):
    match = re.search(r"Credential=[^/]+/\d+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else "us-east-1"


def access_key_of(environ):
    match = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else None


def known_key(key):
    for user in iam_backends[ACCOUNT]["global"].users.values():
        if any(k.access_key_id == key for k in user.access_keys):
            return True
    return False


def looks_like(fmt, head, tail):
    """Whether the object's first and last bytes match the declared format."""
    if fmt == "RAW":
        return len(head) >= 512 and head[510:512] == b"\x55\xaa"
    if fmt == "VMDK":
        return head[:4] == b"KDMV" or head.startswith(b"# Disk DescriptorFile")
    if fmt == "VHD":
        return b"conectix" in tail[-512:] or head[:8] == b"conectix"
    if fmt == "VHDX":
        return head[:8] == b"vhdxfile"
    if fmt == "OVA":
        return head[257:262] == b"ustar"
    return False


def import_image(params, region):
    bucket = params.get("DiskContainer.1.UserBucket.S3Bucket", "")
    key = params.get("DiskContainer.1.UserBucket.S3Key", "")
    fmt = params.get("DiskContainer.1.Format", "").upper()
    if not bucket or not key:
        return ec2_error("InvalidParameter", "DiskContainer.1.UserBucket is required")
    if fmt not in ("OVA", "VMDK", "RAW", "VHD", "VHDX"):
        return ec2_error("InvalidParameter", f"Unsupported disk format {fmt}")
    role = params.get("RoleName", "vmimport")
    iam = iam_backends[ACCOUNT]["global"]
    if args.auth and role not in iam.roles and not any(r.name == role for r in iam.roles.values()):
        return ec2_error(
            "InvalidParameter",
            f"The service role {role} provided does not exist or does not have sufficient permissions",
        )
    task_id = "import-ami-" + uuid.uuid4().hex[:17]
    task = {
        "id": task_id,
        "region": region,
        "bucket": bucket,
        "key": key,
        "format": fmt,
        "description": params.get("Description", ""),
        "license": params.get("LicenseType", "BYOL"),
        "polls": 0,
        "status": "active",
        "message": "pending",
        "progress": "2",
        "image": None,
        "size": 0,
    }
    with lock:
        tasks[task_id] = task
    return 200, response("ImportImageResponse", task_xml(task, top=True))


def advance(task):
    """Two polls `active`, then the import ends one way or the other."""
    if task["status"] != "active":
        return
    task["polls"] += 1
    if task["polls"] == 1:
        task["message"], task["progress"] = "converting", "28"
        return
    if task["polls"] == 2:
        task["message"], task["progress"] = "preparing ami", "83"
        return
    s3 = s3_backends[ACCOUNT]["global"]
    try:
        obj = s3.get_object(task["bucket"], task["key"])
    except Exception:  # moto raises its own missing-bucket/key errors
        obj = None
    if obj is None:
        fail(task, "ClientError: Unable to access the S3 object "
                   f"s3://{task['bucket']}/{task['key']}")
        return
    data = obj.value
    task["size"] = len(data)
    if not looks_like(task["format"], data[:1024], data[-1024:]):
        if task["format"] == "RAW":
            fail(task, "ClientError: Unknown OS / Missing OS files.")
        else:
            fail(task, "ClientError: Disk validation failed [Unsupported specified file format]")
        return
    ec2 = ec2_backends[ACCOUNT][task["region"]]
    ami = ec2.register_image(name=task["id"], description=task["description"])
    task["image"] = ami.id
    task["status"], task["message"], task["progress"] = "completed", None, None


def fail(task, message):
    task["status"], task["message"], task["progress"] = "deleted", message, None


def task_xml(task, top=False):
    parts = [f"<importTaskId>{task['id']}</importTaskId>"]
    if task["image"]:
        parts.append(f"<imageId>{task['image']}</imageId>")
    parts.append(f"<description>{esc(task['description'])}</description>")
    parts.append(f"<licenseType>{esc(task['license'])}</licenseType>")
    parts.append("<architecture>x86_64</architecture><platform>Linux</platform>")
    if task["progress"]:
        parts.append(f"<progress>{task['progress']}</progress>")
    parts.append(f"<status>{task['status']}</status>")
    if task["message"]:
        parts.append(f"<statusMessage>{esc(task['message'])}</statusMessage>")
    parts.append(
        "<snapshotDetailSet><item>"
        f"<diskImageSize>{task['size']}.0</diskImageSize><format>{task['format']}</format>"
        f"<userBucket><s3Bucket>{esc(task['bucket'])}</s3Bucket>"
        f"<s3Key>{esc(task['key'])}</s3Key></userBucket>"
        "</item></snapshotDetailSet>"
    )
    body = "".join(parts)
    return body if top else f"<item>{body}</item>"


def response(name, inner):
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{name} xmlns="{EC2_NS}">'
        f"<requestId>{uuid.uuid4()}</requestId>{inner}</{name}>"
    )


def describe_tasks(params):
    ids = [v for k, v in sorted(params.items()) if k.startswith("ImportTaskId.")]
    with lock:
        for i in ids:
            if i not in tasks:
                return ec2_error("InvalidConversionTaskId", f"The task ID '{i}' does not exist")
        chosen = [tasks[i] for i in ids] if ids else list(tasks.values())
        for t in chosen:
            advance(t)
        items = "".join(task_xml(t) for t in chosen)
    return 200, response(
        "DescribeImportImageTasksResponse", f"<importImageTaskSet>{items}</importImageTaskSet>"
    )


ADDED = {"ImportImage", "DescribeImportImageTasks"}


class Harness:
    def __init__(self, moto_app):
        self.moto = moto_app

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = {}
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        action = params.get("Action")
        log({
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "query": {k: v[0] for k, v in query.items()},
            "action": action,
            "region": region_of(environ),
            "bytes": len(body),
        })
        path = environ.get("PATH_INFO", "")
        if path == "/_fake_aws/hold" and environ["REQUEST_METHOD"] == "POST":
            with lock:
                holds[query["bucket"][0]] = query["part"][0]
            return self.answer(start_response, 200, "<Ok/>")
        bucket = path.strip("/").split("/")[0]
        with lock:
            hold = environ["REQUEST_METHOD"] == "PUT" and holds.get(bucket) is not None \
                and query.get("partNumber") == [holds[bucket]]
            if hold:
                part = int(holds.pop(bucket))
        if hold:
            log({"held": part, "bucket": bucket})
            threading.Event().wait(300)
            return self.answer(start_response, 500, "<Error><Code>InternalError</Code></Error>")
        if (
            HOLD_PART
            and environ["REQUEST_METHOD"] == "PUT"
            and query.get("partNumber") == [HOLD_PART]
            and not held.is_set()
        ):
            held.set()
            log({"held": int(HOLD_PART)})
            threading.Event().wait(300)
            return self.answer(start_response, 500, "<Error><Code>InternalError</Code></Error>")
        if action in ADDED:
            if args.auth and not known_key(access_key_of(environ)):
                status, text = ec2_error("AuthFailure", "AWS was not able to validate the provided access credentials", 401)
            elif action == "ImportImage":
                status, text = import_image(params, region_of(environ))
            else:
                status, text = describe_tasks(params)
            return self.answer(start_response, status, text)
        return self.moto(environ, start_response)

    @staticmethod
    def answer(start_response, status, text):
        data = text.encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 500: "Internal Server Error"}
        start_response(
            f"{status} {reason.get(status, 'Error')}",
            [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))],
        )
        return [data]


def admin_key():
    """An IAM user allowed everything, and the `vmimport` role VM Import needs."""
    iam = iam_backends[ACCOUNT]["global"]
    iam.create_user(region_name="us-east-1", user_name="kiln-test")
    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    })
    iam.put_user_policy("kiln-test", "everything", policy)
    trust = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "vmie.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }],
    })
    iam.create_role(
        role_name="vmimport",
        assume_role_policy_document=trust,
        path="/",
        permissions_boundary=None,
        description="VM Import",
        tags=[],
        max_session_duration=None,
    )
    key = iam.create_access_key("kiln-test")
    return key.access_key_id, key.secret_access_key


def main():
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, Harness(app), threaded=True)
    ready = {"port": server.server_port}
    if args.auth:
        ready["access_key_id"], ready["secret_access_key"] = admin_key()
    print(json.dumps(ready), flush=True)
    if args.exit_on_stdin_eof:
        def watch_stdin():
            while sys.stdin.buffer.read(65536):
                pass
            os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
