"""The engine imports and runs in a process where importing torch fails."""

import subprocess
import sys
import textwrap

from engine_graphs import small_graph
from pocketbnn import engine


def test_engine_runs_without_torch(tmp_path):
    path = tmp_path / "m.pbnn"
    engine.save(small_graph(), str(path))
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, Block())
        import numpy as np
        import pocketbnn.engine as engine
        interp = engine.load({str(path)!r})
        y = interp.run(np.ones((2, 9, 9, 4), np.float32))
        assert y.shape == (2, 5) and abs(float(y.sum()) - 2.0) < 1e-5
        assert "torch" not in sys.modules
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
