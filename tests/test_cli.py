from click.testing import CliRunner

from keras_pixelcnn.cli.main import cli
from keras_pixelcnn.models import ARCHITECTURES


def test_architectures_lists_every_architecture_with_defaults():
    result = CliRunner().invoke(cli, ["architectures"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == list(ARCHITECTURES)
    assert "filters=64" in lines[0] and "num_layers=5" in lines[0]


def test_unknown_command_exits_2():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
