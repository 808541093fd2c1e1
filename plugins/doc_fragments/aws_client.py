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
    description:
      - Seconds to wait for a TCP (and TLS) connection to the AWS endpoint, per attempt.
    type: float
    default: 3.0
  read_timeout:
    description:
      - Seconds to wait for the next bytes of an answer from the AWS endpoint, per attempt. AWS answers every
        call these modules make in well under this (a CloudFormation deployment is polled, not waited for
        in one call); raise it only for an endpoint known to be slow, such as an overloaded emulator.
    type: float
    default: 10.0
  max_attempts:
    description:
      - Attempts per API call (botocore's standard retry mode with jittered exponential backoff;
        throttling, 5xx answers and connection errors are retried).
    type: int
    default: 5
  timeout_attempts:
    description:
      - Attempts per API call when the attempts time out (O(connect_timeout) or O(read_timeout) passed); at most
        O(max_attempts).
      - With the defaults an endpoint that accepts connections and never answers fails the task within
        (O(connect_timeout) + O(read_timeout)) x O(timeout_attempts) = 26 s (plus under a second of backoff),
        naming the endpoint.
    type: int
    default: 2
notes:
  - The AWS endpoint defaults to the E(AWS_ENDPOINT_URL) environment variable when O(endpoint_url) is not set
    (for example the local emulator of the development environment).
"""
