# CreditBot's Airflow image: the official Airflow image plus the project's pinned requirements.
#
# Nothing secret is in the image: connections, the settings Variable and Airflow's own keys come from
# the environment when a container starts (docker-compose.yaml reads them from .env).
#
# The -python3.11 variant of apache/airflow:3.3.2, because the project and its lock are Python 3.11.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# Airflow's documented way to extend the image (as the airflow user, "apache-airflow==${AIRFLOW_VERSION}"
# named so pip cannot move Airflow), with requirements.lock as the constraints file: the image gets
# exactly the versions the test suite ran with.
COPY --chown=airflow:0 requirements.txt requirements.lock /opt/credit-bot/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r /opt/credit-bot/requirements.txt -c /opt/credit-bot/requirements.lock

# The runtime ships in the image so it runs without bind mounts; docker-compose.yaml mounts the working
# copy over these paths. Only the runtime: the DAG, the credit_bot package and the notebooks. The
# harness (sandbox, sample warehouse, demo, local deployment), the bench and the tests never ship.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/notebooks/ /opt/airflow/include/notebooks/
# Bytecode for the DAG and credit_bot: every task process imports them afresh, and would compile them
# from source each time where it cannot write __pycache__ (harness.deployment.compile_runtime).
RUN python -m compileall -q /opt/airflow/dags /opt/airflow/plugins
# plugins/ holds the credit_bot package the DAG imports; the notebook kernels need it too.
ENV PYTHONPATH=/opt/airflow/plugins
