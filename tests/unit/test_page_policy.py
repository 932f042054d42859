"""The CSP of the API's HTML pages: inline sources allowed by their exact hash, nothing else."""

from __future__ import annotations

import base64
import hashlib

from api.page_policy import inline_script_hashes, page_policy, source_hash


def test_a_hash_is_of_the_exact_inline_text() -> None:
    body = "body{margin:0}"
    expected = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    assert source_hash(body) == f"'sha256-{expected}'"
    assert source_hash(body + " ") != source_hash(body)


def test_only_inline_scripts_are_hashed() -> None:
    page = '<script src="/a.js"></script><script>\nrun()\n</script>'
    assert inline_script_hashes(page) == [source_hash("\nrun()\n")]


def test_a_page_policy_denies_what_it_does_not_name() -> None:
    policy = page_policy(img=["'self'"], form_action=["'self'"])
    assert policy == (
        "default-src 'none'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    assert "form-action 'none'" in page_policy()
