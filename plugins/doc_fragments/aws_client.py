# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What biomage.iac's AWS modules add to amazon.aws's connection options (module_utils/aws.py).

The connection itself (region, profile, access_key, secret_key, session_token, endpoint_url,
aws_ca_bundle, validate_certs, aws_config) is amazon.aws's: modules extend
C(amazon.aws.common.modules), C(amazon.aws.region.modules) and C(amazon.aws.boto3) beside this one.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  connect_timeout:
    description: Seconds to wait for a connection to the AWS endpoint.
    type: float
    default: 5.0
  read_timeout:
    description: Seconds to wait for an answer from the AWS endpoint.
    type: float
    default: 60.0
  max_attempts:
    description:
      - Attempts per API call (botocore's standard retry mode with jittered exponential backoff;
        throttling and transient errors are retried).
    type: int
    default: 5
notes:
  - The AWS endpoint defaults to the E(AWS_ENDPOINT_URL) environment variable when O(endpoint_url) is not set
    (for example the local emulator of the development environment).
"""
