"""C2PA Content Credentials: sign what convert writes, read them back for verify.

Signing needs a certificate chain. On first use facetwin makes its own in the user's config folder:
a P-256 root CA and a signing certificate with the key usages C2PA accepts (digitalSignature, EKU
emailProtection; documentSigning, serverAuth or no EKU are refused by c2pa-rs). Readers elsewhere see
a valid manifest from an untrusted signer, which is the truth; `facetwin verify` on this machine trusts
the local root. A user with a real certificate passes --sign-cert and --sign-key instead.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import facetwin
from facetwin.errors import FacetwinError

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CLAIM_LABEL = "com.facetwin.swap"
MIME_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".m4v": "video/mp4", ".png": "image/png",
              ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".tif": "image/tiff", ".tiff": "image/tiff"}


def config_dir() -> Path:
    """FACETWIN_CONFIG_DIR, else $XDG_CONFIG_HOME/facetwin, else ~/.config/facetwin."""
    if os.environ.get("FACETWIN_CONFIG_DIR"):
        return Path(os.environ["FACETWIN_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "facetwin"


def mime_type(path: Path) -> str | None:
    return MIME_TYPES.get(path.suffix.lower())


@dataclass(frozen=True)
class SigningIdentity:
    """A PEM certificate chain (signer first) and its private key; `root` is trusted by verify."""

    chain: bytes
    key: bytes
    root: bytes | None = None

    @staticmethod
    def from_files(cert: Path, key: Path) -> SigningIdentity:
        try:
            return SigningIdentity(cert.read_bytes(), key.read_bytes())
        except OSError as exc:
            raise FacetwinError(f"cannot read the signing certificate or key: {exc}") from exc


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "facetwin (local signer)")])


def _key_usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs,
                         crl_sign=sign_certs, encipher_only=False, decipher_only=False)


def _make_identity() -> tuple[bytes, bytes, bytes]:
    now = datetime.datetime.now(datetime.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(_name("facetwin local root")).issuer_name(_name("facetwin local root"))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(sign_certs=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("facetwin signer")).issuer_name(root.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign_certs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    chain = cert.public_bytes(pem) + root.public_bytes(pem)
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, key_pem, root.public_bytes(pem)


def local_identity(folder: Path | None = None) -> SigningIdentity:
    """The local signing identity, made on first use. The folder appears whole or not at all (built
    beside it, then renamed), so two processes starting at once agree on one identity."""
    folder = folder or config_dir() / "signing"
    if not (folder / "signer.key").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        chain, key, root = _make_identity()
        staging = Path(tempfile.mkdtemp(prefix=".signing-", dir=folder.parent))
        (staging / "chain.pem").write_bytes(chain)
        (staging / "root.pem").write_bytes(root)
        key_path = staging / "signer.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        try:
            staging.rename(folder)
        except OSError:  # another process won the race: use its identity
            for leftover in staging.iterdir():
                leftover.unlink()
            staging.rmdir()
    return SigningIdentity((folder / "chain.pem").read_bytes(), (folder / "signer.key").read_bytes(),
                           (folder / "root.pem").read_bytes())


@dataclass(frozen=True)
class SwapClaim:
    """What the credential says about one output."""

    model_id: str
    input_name: str
    input_sha256: str
    watermark: str  # the payload's hex, so a reader can match credential and watermark
    swapped_frames: int
    frames: int
    direction: str


def _manifest(claim: SwapClaim, title: str, parent: dict[str, Any] | None) -> dict[str, Any]:
    agent = {"name": "facetwin", "version": facetwin.__version__}
    return {
        "claim_generator_info": [agent],
        "title": title,
        "ingredients": [parent] if parent is not None else [],
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [
                {"action": "c2pa.opened", "parameters": {"ingredientIds": ["source"]}},
                {"action": "c2pa.edited", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA, "softwareAgent": agent,
                 "description": "faces replaced by a trained autoencoder (facetwin convert)"},
            ]}},
            {"label": CLAIM_LABEL, "data": {
                "model_id": claim.model_id, "input": claim.input_name, "input_sha256": claim.input_sha256,
                "watermark_payload": claim.watermark, "swapped_frames": claim.swapped_frames,
                "frames": claim.frames, "direction": claim.direction}},
        ],
    }


def _without_thumbnails() -> c2pa.Context:
    """Thumbnails cost ~0.2 s an image and copy the picture into its own metadata: left out."""
    return c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})


def sign(source: Path, destination: Path, claim: SwapClaim, identity: SigningIdentity, original: Path) -> None:
    """Write `source` with an embedded, signed manifest to `destination` (atomically). `original` is the
    input file, recorded as the parent ingredient (its own credentials, if any, are kept in the chain)."""
    mime = mime_type(destination)
    if mime is None:
        raise FacetwinError(f"{destination}: facetwin cannot attach Content Credentials to this format; "
                            f"use one of {', '.join(sorted(MIME_TYPES))}")
    parent = {"title": original.name, "relationship": "parentOf", "label": "source"}
    parent_mime = mime_type(original)
    # A parent in a format c2pa reads is added from its bytes, so any credentials it has stay in the
    # chain; any other (AVI, MKV...) is named in the manifest only.
    builder = c2pa.Builder(_manifest(claim, destination.name, None if parent_mime else {**parent, "format": "application/octet-stream"}),
                           context=_without_thumbnails())
    if parent_mime is not None:
        with open(original, "rb") as parent_stream:
            builder.add_ingredient(parent, parent_mime, parent_stream)
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg=b"es256", sign_cert=identity.chain, private_key=identity.key, ta_url=None))
    partial = destination.with_name(f".{destination.name}.signing")
    try:
        with open(source, "rb") as src, open(partial, "wb") as dst:
            builder.sign(signer, mime, src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(partial, destination)
    except c2pa.C2paError as exc:
        partial.unlink(missing_ok=True)
        raise FacetwinError(f"{destination}: could not attach Content Credentials ({exc})") from exc
    except OSError:
        partial.unlink(missing_ok=True)
        raise


@dataclass
class CredentialReport:
    """What a file's C2PA manifest says, if it has one."""

    present: bool
    state: str | None = None  # Valid, Trusted or Invalid
    problems: list[str] = field(default_factory=list)
    generator: str | None = None
    synthetic: bool = False  # an action with digitalSourceType trainedAlgorithmicMedia
    claim: dict[str, Any] = field(default_factory=dict)
    signer: str | None = None

    @property
    def valid(self) -> bool:
        return self.present and self.state in ("Valid", "Trusted")


def read_credentials(path: Path, trust_roots: list[bytes] | None = None) -> CredentialReport:
    mime = mime_type(path)
    context = None
    if trust_roots:
        anchors = b"".join(trust_roots).decode()
        context = c2pa.Context.from_dict({"trust": {"trust_anchors": anchors}, "verify": {"verify_trust": True}})
    try:
        with open(path, "rb") as stream:
            reader = c2pa.Reader(mime, stream, context=context) if context is not None else c2pa.Reader(mime, stream)
            state = reader.get_validation_state()
            store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "no JUMBF" in str(exc):
            return CredentialReport(present=False)
        return CredentialReport(present=True, state="Invalid", problems=[str(exc)])
    manifest = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    actions = [a for assertion in manifest.get("assertions", []) if assertion.get("label", "").startswith("c2pa.actions")
               for a in assertion.get("data", {}).get("actions", [])]
    claim: dict[str, Any] = next((a.get("data", {}) for a in manifest.get("assertions", []) if a.get("label") == CLAIM_LABEL), {})
    generator: dict[str, Any] = next(iter(manifest.get("claim_generator_info", [])), {})
    problems = [f"{s.get('code')}: {s.get('explanation')}" for s in store.get("validation_status") or []
                if s.get("code") != "signingCredential.untrusted"]
    return CredentialReport(
        present=True,
        state=state,
        problems=problems,
        generator=f"{generator.get('name', '?')} {generator.get('version', '')}".strip() if generator else None,
        synthetic=any(a.get("digitalSourceType") == TRAINED_ALGORITHMIC_MEDIA for a in actions),
        claim=claim,
        signer=manifest.get("signature_info", {}).get("common_name"),
    )
