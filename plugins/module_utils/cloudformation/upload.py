# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Templates too large for a request body, passed to CloudFormation through S3 as AWS requires.

CloudFormation takes at most 51,200 bytes of ``TemplateBody`` in a request; a larger template (up to
1 MB) must be uploaded to S3 and named by ``TemplateURL``. :class:`TemplateUploader` puts such a
template into the bucket it is given, under a key made of the stack name and the template's SHA-256
(uploading the same template twice writes nothing), and, when allowed to, creates that bucket first:
private (all public access blocked), encrypted (SSE-S3), and expiring the uploaded objects after
:data:`EXPIRE_DAYS` days (CloudFormation keeps its own copy of every template it deploys, so the
object is only needed while the request is made).
"""

from __future__ import annotations

import hashlib
import threading

from ansible_collections.biomage.iac.plugins.module_utils.aws import ClientError, aws_error, error_code
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import CfnError

# the object key prefix of uploaded templates
KEY_PREFIX = "biomage-iac/cloudformation"
EXPIRE_DAYS = 30
NEEDS = "the S3 bucket for large templates (s3:CreateBucket, s3:PutObject, s3:GetObject, s3:ListBucket)"


def template_key(stack_name, body):
    return f"{KEY_PREFIX}/{stack_name}/{hashlib.sha256(body.encode('utf-8')).hexdigest()}.template"


def template_url(bucket, region, key):
    """The virtual-hosted S3 URL CloudFormation reads a template from."""
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


class TemplateUploader:
    """Uploads large templates to ``bucket`` (creating it when ``create``); thread-safe.

    ``client`` is an S3 client or a zero-argument callable returning one (made only when a large
    template is deployed). In check mode nothing is created or uploaded: :meth:`check` only reads
    whether the bucket exists (or would be created), and the plan of a large template comes from the
    template alone.
    """

    def __init__(self, client, bucket, region, *, create=False, check_mode=False, settings=None):
        self._client = client
        self.bucket = bucket
        self.region = region
        self.create = create
        self.check_mode = check_mode
        self.settings = settings or {}
        self.bucket_created = False
        self._bucket_ready = None
        self._lock = threading.Lock()

    @property
    def client(self):
        if callable(self._client) and not hasattr(self._client, "put_object"):
            self._client = self._client()
        return self._client

    def _error(self, exc, action):
        return aws_error(exc, self.settings, action, needs=NEEDS)

    def _ensure_bucket(self):
        """True when the bucket exists (after creating it if allowed); False only in check mode."""
        with self._lock:
            if self._bucket_ready is not None:
                return self._bucket_ready
            try:
                self.client.head_bucket(Bucket=self.bucket)
                self._bucket_ready = True
                return True
            except ClientError as exc:
                if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise self._error(exc, f"find the S3 bucket {self.bucket} for large templates") from exc
            if not self.create:
                raise CfnError(
                    f"the S3 bucket {self.bucket} for templates over 51,200 bytes does not exist",
                    fix="create it, or let the module create it (template_bucket_create: true)",
                )
            if self.check_mode:
                self.bucket_created = True  # would be
                self._bucket_ready = False
                return False
            self._create_bucket()
            self.bucket_created = True
            self._bucket_ready = True
            return True

    def _create_bucket(self):
        action = f"create the S3 bucket {self.bucket} for large templates"
        try:
            kwargs = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self.client.create_bucket(**kwargs)
            self.client.put_public_access_block(
                Bucket=self.bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
            self.client.put_bucket_encryption(
                Bucket=self.bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "expire-uploaded-templates",
                            "Status": "Enabled",
                            "Filter": {"Prefix": f"{KEY_PREFIX}/"},
                            "Expiration": {"Days": EXPIRE_DAYS},
                        }
                    ]
                },
            )
        except ClientError as exc:
            raise self._error(exc, action) from exc

    def check(self):
        """Check mode: raise when the bucket is missing and may not be created; note a creation."""
        self._ensure_bucket()

    def location(self, stack_name, body):
        """``{"TemplateURL": url}`` of the uploaded template (never called in check mode)."""
        if self.check_mode or not self._ensure_bucket():
            raise CfnError(f"{stack_name}: a template is not uploaded in check mode")  # a programming error
        key = template_key(stack_name, body)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise self._error(exc, f"look for the uploaded template of {stack_name}") from exc
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body.encode("utf-8"),
                    ContentType="text/plain; charset=utf-8",
                    ServerSideEncryption="AES256",
                )
            except ClientError as put_exc:
                raise self._error(put_exc, f"upload the template of {stack_name}") from put_exc
        return {"TemplateURL": template_url(self.bucket, self.region, key)}
