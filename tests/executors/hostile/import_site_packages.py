# expect: result ModuleNotFoundError ModuleNotFoundError numpy,onnxruntime
"""Import worker-side packages (cryptography, grpc): only numpy (and ONNX Runtime,
installed with the inference extra) is mounted."""


def entrypoint(argv):
    out = []
    for name in ("cryptography", "grpc"):
        try:
            __import__(name)
            out.append("imported")
        except ImportError as e:
            out.append(type(e).__name__)
    import os

    out.append(",".join(sorted(n for n in os.listdir("/sandbox/lib") if not n.endswith(".libs"))))
    return " ".join(out)
