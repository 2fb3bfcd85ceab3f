from tenants import keys


def test_generated_key_has_documented_shape_and_parses():
    new = keys.generate("live")
    assert keys.KEY_RE.match(new.raw)
    assert new.raw.startswith(f"gt_live_{new.lookup_id}_")
    assert len(new.raw) == len("gt_live_") + 12 + 1 + 32 + 6
    parsed = keys.parse(new.raw)
    assert parsed.lookup_id == new.lookup_id
    assert parsed.prefix == new.prefix
    assert keys.matches(new.raw, new.sha256)


def test_checksum_rejects_a_single_changed_character():
    raw = keys.generate("live").raw
    i = len("gt_live_") + 12 + 1 + 5
    swapped = raw[:i] + ("A" if raw[i] != "A" else "B") + raw[i + 1:]
    assert keys.parse(swapped) is None


def test_parse_rejects_malformed_strings():
    for bad in ["", "gt_live_", "sk_live_abc", "gt_prod_" + "a" * 12 + "_" + "b" * 38, "gt_live_short_x"]:
        assert keys.parse(bad) is None


def test_secret_is_not_derivable_from_stored_fields():
    new = keys.generate("test")
    assert new.raw.split("_")[3][:32] not in new.sha256
    assert len(new.sha256) == 64
