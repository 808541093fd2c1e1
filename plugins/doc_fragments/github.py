# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GitHub connection options shared by the collection's GitHub modules (GITHUB_ARGUMENT_SPEC)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_url:
    description: The GitHub REST API's base URL (the local stand-in in development).
    type: str
    default: https://api.github.com
  token:
    description:
      - A GitHub token with the rights the module's notes name. Falls back to E(GITHUB_TOKEN).
      - Give either a token or the GitHub App options (O(app_id), O(app_private_key_path)); the App
        wins when both are given.
      - Never logged or returned.
    type: str
  app_id:
    description:
      - The id of the GitHub App to act as (instead of O(token)). Falls back to E(GITHUB_APP_ID).
      - The client signs a JWT (RS256) with O(app_private_key_path), buys an installation token with
        it and renews that token before it expires.
    type: str
  app_installation_id:
    description:
      - The App's installation (on the organisation). Falls back to E(GITHUB_APP_INSTALLATION_ID).
      - When omitted, it is looked up from the repository the module acts on.
    type: int
  app_private_key_path:
    description:
      - The App's private key file (the PEM GitHub made). Falls back to E(GITHUB_APP_PRIVATE_KEY_FILE).
    type: path
  app_private_key:
    description:
      - The App's private key itself (PEM text), instead of O(app_private_key_path). Falls back to
        E(GITHUB_APP_PRIVATE_KEY). Never logged or returned.
    type: str
  validate_certs:
    description: Whether to verify the API's TLS certificate.
    type: bool
    default: true
  api_timeout:
    description:
      - Seconds to wait for the connection and for each read of a response. An API that accepts the
        connection but never answers fails the task after this, naming the endpoint.
    type: float
    default: 20
notes:
  - GitHub's rate limits are waited out (429, and 403 answers with C(Retry-After) or an exhausted
    quota, up to three minutes in all); a rate limit is never reported as a missing permission.
"""

    # a module that acts as the GitHub App only (no token): biomage.iac.flux_release
    APP = r"""
options:
  api_url:
    description: The GitHub REST API's base URL (the local stand-in in development).
    type: str
    default: https://api.github.com
  app_id:
    description:
      - The id of the GitHub App to act as (required, as no token is accepted). Falls back to E(GITHUB_APP_ID).
      - The client signs a JWT (RS256) with O(app_private_key_path), buys an installation token with
        it and renews that token before it expires.
    type: str
  app_installation_id:
    description:
      - The App's installation (on the organisation). Falls back to E(GITHUB_APP_INSTALLATION_ID).
      - When omitted, it is looked up from the repository the module acts on.
    type: int
  app_private_key_path:
    description:
      - The App's private key file (the PEM GitHub made). Falls back to E(GITHUB_APP_PRIVATE_KEY_FILE).
    type: path
  app_private_key:
    description:
      - The App's private key itself (PEM text), instead of O(app_private_key_path). Falls back to
        E(GITHUB_APP_PRIVATE_KEY). Never logged or returned.
    type: str
  github_validate_certs:
    description: Whether to verify the GitHub API's TLS certificate.
    type: bool
    default: true
  api_timeout:
    description:
      - Seconds to wait for the connection and for each read of a response. An API that accepts the
        connection but never answers fails the task after this, naming the endpoint.
    type: float
    default: 20
notes:
  - GitHub's rate limits are waited out (429, and 403 answers with C(Retry-After) or an exhausted
    quota, up to three minutes in all); a rate limit is never reported as a missing permission.
"""

    # the repository a module acts on (GITHUB_REPOSITORY_SPEC)
    REPOSITORY = r"""
options:
  owner:
    description: The repository's owner (organisation or user).
    type: str
    required: true
  repo:
    description: The repository's name.
    type: str
    required: true
"""
