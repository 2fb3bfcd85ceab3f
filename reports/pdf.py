"""HTML -> PDF with WeasyPrint: the only module that imports it (ARCHITECTURE.md).

Takes finished HTML and explicit metadata, returns our own type. Output is
deterministic: the PDF identifier and dates come from the caller (the report's inputs),
never from the clock, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

logger = logging.getLogger(__name__)
# WeasyPrint logs every rendering step at INFO: noise in worker and command output.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


class PdfError(RuntimeError):
    """WeasyPrint could not render the document (a template or asset error)."""


@dataclass(frozen=True)
class RenderedPdf:
    content: bytes
    pages: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def pdf_render(*, html: str, fingerprint: str, created_at: datetime,
               attachments: dict[str, bytes] | None = None) -> RenderedPdf:
    """Render `html` (which must link no external resources: charts are data URIs) to PDF.

    `fingerprint` is written to the PDF's metadata (key greentierfingerprint) and
    seeds its file identifier; `created_at` becomes its creation and modification date.
    `attachments` (name -> bytes) are embedded files, e.g. the canonical inputs JSON.
    Raises PdfError if WeasyPrint fails.
    """
    import weasyprint  # imported here: the app loads without WeasyPrint's native libraries

    stamp = created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    head = (f'<meta name="dcterms.created" content="{stamp}"><meta name="dcterms.modified" content="{stamp}">'
            f'<meta name="generator" content="greentier"><meta name="greentier-fingerprint" content="{fingerprint}">')
    html = html.replace("<head>", "<head>" + head, 1)
    try:
        document = weasyprint.HTML(string=html, base_url=None).render()
        naive = created_at.replace(tzinfo=None)  # WeasyPrint writes attachment dates as UTC "Z"
        files = [weasyprint.Attachment(string=data, name=name, base_url=None, created=naive, modified=naive)
                 for name, data in (attachments or {}).items()]
        content = document.write_pdf(
            custom_metadata=True, pdf_identifier=bytes.fromhex(fingerprint[:32]), attachments=files or None)
    except Exception as exc:  # WeasyPrint raises many types; callers need one
        logger.exception("pdf: rendering failed")
        raise PdfError(f"PDF rendering failed: {type(exc).__name__}: {exc}") from exc
    return RenderedPdf(content=content, pages=len(document.pages))
