"""Golden fixture app."""


def main() -> int:
    import six

    print("golden", six.__version__)
    return 0
