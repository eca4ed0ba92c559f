import subprocess
import sys
import textwrap

# Run Python with `import torch` made to fail, as on a machine without the torch extra.
_NO_TORCH = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockTorch())
    """
)


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _NO_TORCH + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


def test_import_and_pack_without_torch():
    result = _run_without_torch(
        """
        import numpy as np
        import pocketbnn
        from pocketbnn import kernels
        packed = kernels.pack_bits(np.array([[-1.0, 2.0, -3.0]], dtype=np.float32))
        assert packed.tolist() == [[0b101]], packed
        assert "torch" not in sys.modules
        try:
            import torch
        except ImportError:
            print("blocked")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "blocked"


def test_cli_info_runs_without_torch():
    result = _run_without_torch(
        """
        from pocketbnn.cli import main
        raise SystemExit(main(["info"]))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "bitpack_f32" in result.stdout
