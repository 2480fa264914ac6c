"""Platform fields. smith_minimize(platform=...): checked where the BUILD file is read; passed to
`smith minimize` and `smith image` only when it is not the default (so linux/amd64 targets keep
their cache keys). smith_remote_image(platform=...): a platform or `all` (the whole index)."""
import pytest
from pants.engine.addresses import Address
from pants.engine.target import InvalidFieldException

from smith.plugin.rules.util.minimize import SmithMinimizeFieldSet
from smith.plugin.target_types.minimize import SmithMinimizePlatformField, SmithMinimizeTarget
from smith.plugin.target_types.remote_image import SmithRemotePlatformField

ADDRESS = Address("examples/x", target_name="small")


def test_a_bad_platform_names_target_and_field():
    with pytest.raises(InvalidFieldException, match=r"The `platform` field of examples/x:small: platform "
                                                    r"'arm64': write os/arch or os/arch/variant"):
        SmithMinimizePlatformField("arm64", ADDRESS)


@pytest.mark.parametrize("value,argv", [(None, []), ("linux/amd64", []),
                                        ("linux/arm64", ["--platform", "linux/arm64"])])
def test_platform_argv(value, argv):
    fields = {"image": ":full"}
    if value:
        fields["platform"] = value
    fs = SmithMinimizeFieldSet.create(SmithMinimizeTarget(fields, ADDRESS))
    assert fs.platform_argv() == argv


@pytest.mark.parametrize("value", ["all", "linux/arm64", "linux/arm/v7"])
def test_remote_image_platform_may_keep_the_whole_index(value):
    assert SmithRemotePlatformField(value, ADDRESS).value == value


def test_remote_image_platform_must_be_a_platform_or_all():
    with pytest.raises(InvalidFieldException, match="or `all`"):
        SmithRemotePlatformField("every", ADDRESS)
