# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Flux's install manifest, checked before anything of it is applied: its pinned digest, then its
objects (parsed within safe_yaml's limits), the images its Deployments run (only from the configured
registry), the controllers the role needs, and the one namespace it creates and fills. The checked
objects get the multi-tenancy lockdown (:mod:`lockdown`). Every refusal names what was found and the fix,
and says that nothing was applied."""

from __future__ import annotations

import hashlib
import re

from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.flux import lockdown


class ManifestError(BiomageError):
    """The install manifest cannot be applied as it is."""


def _items(value):
    return value if isinstance(value, list) else []


def _mapping(value):
    return value if isinstance(value, dict) else {}


def images(deployments):
    """Every image of the Deployments' containers and init containers, sorted, once each."""
    found = set()
    for deployment in deployments:
        pod = _mapping(_mapping(_mapping(deployment.get("spec")).get("template")).get("spec"))
        for container in _items(pod.get("containers")) + _items(pod.get("initContainers")):
            if isinstance(container, dict) and container.get("image"):
                found.add(str(container["image"]))
    return sorted(found)


def image_pattern(repository):
    """``<repository>/<name>[:<tag>][@sha256:<digest>]``: an image of that registry and namespace only."""
    return re.compile(rf"^{re.escape(repository)}/[a-z0-9][a-z0-9._-]*(:[\w][\w.-]*)?(@sha256:[0-9a-f]{{64}})?$")


def check(content, url, sha256, image_repository, required_controllers, namespace):
    """The manifest's objects, its controllers (Deployment names) and images, once ``content`` (the text
    read from ``url``) has the pinned digest and passes every check; :class:`ManifestError` otherwise."""
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
    if digest != sha256:
        raise ManifestError(
            f"{url} has the SHA-256 {digest}, not the pinned {sha256} (flux_install_manifest_sha256). Nothing was "
            "applied.",
            fix="check flux_version and flux_install_manifest_url; pin a new digest only after reviewing the manifest "
            "it belongs to.",
        )
    try:
        objects = [document for document in safe_yaml.load_all(content, source=url) if document]
    except BiomageError as exc:
        message, _sep, fix = str(exc).partition(" Fix: ")
        raise ManifestError(f"{message.rstrip()} Nothing was applied.", fix=fix or None) from exc
    if not all(isinstance(obj, dict) for obj in objects):
        raise ManifestError(
            f"{url} holds a document that is not an object. Nothing was applied.",
            fix="flux_install_manifest_url must be a Flux release's install.yaml",
        )
    deployments = [obj for obj in objects if obj.get("kind") == "Deployment"]
    manifest_images = images(deployments)
    pattern = image_pattern(image_repository)
    foreign = [image for image in manifest_images if not pattern.match(image)]
    if not manifest_images or foreign:
        raise ManifestError(
            f"{url} runs {', '.join(foreign) if foreign else 'no image'}, not only images of {image_repository}/ "
            "(flux_image_repository). Nothing was applied.",
            fix="check flux_version and flux_install_manifest_url; a mirror of Flux's images is set as "
            "flux_image_repository.",
        )
    controllers = [_mapping(obj.get("metadata")).get("name") for obj in deployments]
    missing = [name for name in required_controllers if name not in controllers]
    if missing:
        raise ManifestError(
            f"{url} has no Deployment of {', '.join(missing)} (flux_required_controllers): the GitRepository, "
            "Kustomization and HelmReleases would never be reconciled. Nothing was applied.",
            fix="check flux_install_manifest_url; it must be a Flux release's install.yaml.",
        )
    filled = sorted(
        {_mapping(obj.get("metadata"))["namespace"] for obj in objects if "namespace" in _mapping(obj.get("metadata"))}
    )
    created = [_mapping(obj.get("metadata")).get("name") for obj in objects if obj.get("kind") == "Namespace"]
    if filled != [namespace] or created != [namespace]:
        raise ManifestError(
            f"{url} puts objects in {', '.join(map(str, filled)) or 'no namespace'} and creates the namespaces "
            f"{', '.join(map(str, created)) or 'none'}, not only {namespace}. Nothing was applied.",
            fix="flux_namespace must be the manifest's namespace (a Flux release's install.yaml creates it).",
        )
    return {"objects": objects, "controllers": controllers, "images": manifest_images}


def locked(objects, service_account):
    """The checked objects with the multi-tenancy lockdown on kustomize-controller and helm-controller."""
    try:
        return lockdown.lock_down(objects, service_account)
    except lockdown.LockdownError as exc:
        raise ManifestError(str(exc)) from exc
