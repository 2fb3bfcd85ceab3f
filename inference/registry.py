"""Model registry writes and reads: content-addressed artifacts, families, variants."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from inference.models import ModelArtifact, ModelFamily, ModelVariant


def artifact_path(artifact: ModelArtifact) -> Path:
    return Path(settings.MEDIA_ROOT) / artifact.path


def artifact_store(*, content: bytes) -> ModelArtifact:
    """Store an ONNX file under its SHA-256, once. Storing identical bytes again returns
    the existing artifact and writes nothing. The file is written to a temporary name
    and renamed, so a crash never leaves a half-written model under a real hash."""
    sha256 = hashlib.sha256(content).hexdigest()
    existing = ModelArtifact.objects.filter(sha256=sha256).first()
    if existing is not None and artifact_path(existing).exists():
        return existing
    relative = f"models/{sha256[:2]}/{sha256}.onnx"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return ModelArtifact.objects.create(sha256=sha256, size_bytes=len(content), path=relative)
    except IntegrityError:  # a concurrent writer stored the same bytes first
        return ModelArtifact.objects.get(sha256=sha256)


def family_variants(*, family: ModelFamily) -> list[ModelVariant]:
    """Variants of the family's newest version (what serving routes between)."""
    version = family.versions.order_by("-version").first()
    if version is None:
        return []
    return list(version.variants.select_related("artifact", "parent", "version__family").order_by("id"))


def family_list() -> list[ModelFamily]:
    return list(ModelFamily.objects.select_related("default_variant").order_by("name"))


def family_get(*, name: str) -> ModelFamily | None:
    return ModelFamily.objects.select_related("default_variant__artifact").filter(name=name).first()
