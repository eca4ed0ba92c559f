from pocketbnn import kernels


def test_every_listed_kernel_on_this_cpu_is_selected_under_some_isa():
    """Each ISA-parametrized kernel test runs under every available ISA; this makes sure that
    covers every listed kernel of every op, so none escapes the tests."""
    listed = kernels.list_ukernels()
    ops = {k["op"] for k in listed}
    selected = set()
    for isa_name in kernels.available_isas():
        with kernels.use_isa(isa_name):
            selected |= {kernels.selected_ukernel(op) for op in ops}
    assert {k["name"] for k in listed if k["available"]} == selected
    assert {"bitpack_f32", "bitpack_i8", "unpack_f32", "unpack_i8", "bconv2d", "bmaxpool"} <= ops
