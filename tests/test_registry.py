import pytest

from distillguard.errors import ConfigError, UnknownPluginError
from distillguard.registry import Registry


def test_register_get_names() -> None:
    reg: Registry[type] = Registry("widget")

    @reg.register("b")
    class B: ...

    @reg.register("a")
    class A: ...

    assert reg.get("a") is A
    assert reg.names() == ("a", "b")
    assert "b" in reg and len(reg) == 2


def test_unknown_name_lists_known() -> None:
    reg: Registry[type] = Registry("widget")
    reg.register("x")(int)
    with pytest.raises(UnknownPluginError, match="Expected one of: x"):
        reg.get("y")


def test_duplicate_and_bad_names_rejected() -> None:
    reg: Registry[type] = Registry("widget")
    reg.register("x")(int)
    with pytest.raises(ConfigError):
        reg.register("x")(str)
    with pytest.raises(ConfigError):
        reg.register("Bad Name")
