from setuptools import Extension, setup

# -g: debug info records the compile directory (a random temporary path) unless the build maps it
# away with -ffile-prefix-map; this fixture is how the tests prove that it does.
setup(ext_modules=[Extension("cext._speed", ["src/cext/_speed.c"], extra_compile_args=["-g"])])
