from distillguard.cli import main


def test_help_without_command_exits_2(capsys) -> None:
    assert main([]) == 2
    assert "distillguard" in capsys.readouterr().out
