import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.intel.pseudonym import CoalitionKey, KeyRing, email_domain, ip_prefix, normalise_identifier


@pytest.mark.parametrize(
    ("ip", "prefix"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        (" 10.1.2.3 ", "10.1.2.0/24"),
        ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd:12::/64"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
    ],
)
def test_ip_prefix(ip, prefix):
    assert ip_prefix(ip) == prefix
    assert normalise_identifier("ip-prefix", ip) == prefix


@pytest.mark.parametrize("bad", ["", "300.1.1.1", "example.com", "1.2.3"])
def test_ip_prefix_rejects(bad):
    with pytest.raises(InputError):
        ip_prefix(bad)


def test_email_domain():
    assert email_domain("Bob@Example.COM.") == "example.com"
    assert email_domain("example.org") == "example.org"
    assert email_domain("x@bücher.de") == "xn--bcher-kva.de"
    with pytest.raises(InputError):
        email_domain("a@")


def test_pseudonyms_bind_kind_epoch_and_key():
    k1 = CoalitionKey("fmf", 1, b"a" * 32)
    k2 = CoalitionKey("fmf", 2, b"a" * 32)
    k3 = CoalitionKey("fmf", 1, b"b" * 32)
    p = k1.pseudonym("account", "812")
    assert len(p) == 64 and int(p, 16) >= 0
    assert p == CoalitionKey("fmf", 1, b"a" * 32).pseudonym("account", "812")
    assert p != k1.pseudonym("payment", "812")
    assert p != k2.pseudonym("account", "812")
    assert p != k3.pseudonym("account", "812")
    assert "812" not in p


def test_key_validation_and_repr():
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        CoalitionKey("fmf", 1, b"short")
    with pytest.raises(ConfigError, match="epoch"):
        CoalitionKey("fmf", 0, b"x" * 32)
    with pytest.raises(ConfigError, match="coalition"):
        CoalitionKey("Bad Name", 1, b"x" * 32)
    with pytest.raises(ConfigError, match="kind"):
        CoalitionKey("fmf", 1, b"x" * 32).pseudonym("ip", "1.2.3.0/24")
    assert "xxxx" not in repr(CoalitionKey("fmf", 1, b"x" * 32))


def test_keyring():
    ring = KeyRing([CoalitionKey("fmf", 2, b"b" * 32), CoalitionKey("fmf", 1, b"a" * 32)])
    assert ring.current.epoch == 2 and ring.epochs == (1, 2)
    assert ring.get(3) is None
    with pytest.raises(ConfigError):
        KeyRing([CoalitionKey("fmf", 1, b"a" * 32), CoalitionKey("other", 2, b"a" * 32)])
    with pytest.raises(ConfigError):
        KeyRing([])
