"""What the tests ask moto, with boto3 (an independent client, not kiln's):
    inspect_state.py URL KEY SECRET make-bucket NAME
    inspect_state.py URL KEY SECRET objects BUCKET
    inspect_state.py URL KEY SECRET images
    inspect_state.py URL KEY SECRET uploads BUCKET
    inspect_state.py URL KEY SECRET hold BUCKET PART
Prints JSON. INSPECT_REGION (default us-east-1) is the region asked, so
tests sharing one server each look at their own region."""

import json
import sys

import os
import urllib.parse
import urllib.request

import boto3

url, key, secret, command = sys.argv[1:5]
rest = sys.argv[5:]
kw = dict(
    endpoint_url=url,
    region_name=os.environ.get("INSPECT_REGION", "us-east-1"),
    aws_access_key_id=key,
    aws_secret_access_key=secret,
)
s3 = boto3.client("s3", **kw)
ec2 = boto3.client("ec2", **kw)
if command == "make-bucket":
    region = kw["region_name"]
    if region == "us-east-1":
        s3.create_bucket(Bucket=rest[0])
    else:
        s3.create_bucket(Bucket=rest[0], CreateBucketConfiguration={"LocationConstraint": region})
    out = {"created": rest[0]}
elif command == "hold":
    query = urllib.parse.urlencode({"bucket": rest[0], "part": rest[1]})
    urllib.request.urlopen(urllib.request.Request(f"{url}/_fake_aws/hold?{query}", method="POST")).read()
    out = {"hold": rest[0]}
elif command == "objects":
    out = [o["Key"] for o in s3.list_objects_v2(Bucket=rest[0]).get("Contents", [])]
elif command == "uploads":
    out = [u["Key"] for u in s3.list_multipart_uploads(Bucket=rest[0]).get("Uploads", [])]
elif command == "images":
    out = []
    for image in ec2.describe_images(Owners=["self"])["Images"]:
        perms = ec2.describe_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission")
        snaps = [
            b["Ebs"]["SnapshotId"] for b in image.get("BlockDeviceMappings", []) if "Ebs" in b
        ]
        snap_tags = {}
        if snaps:
            for s in ec2.describe_snapshots(SnapshotIds=snaps)["Snapshots"]:
                snap_tags[s["SnapshotId"]] = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
        out.append({
            "id": image["ImageId"],
            "name": image.get("Name"),
            "description": image.get("Description"),
            "tags": {t["Key"]: t["Value"] for t in image.get("Tags", [])},
            "launch_permissions": perms.get("LaunchPermissions", []),
            "snapshot_tags": snap_tags,
        })
else:
    sys.exit(f"unknown command {command}")
print(json.dumps(out, sort_keys=True))
