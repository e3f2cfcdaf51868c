import streamlit as st

st.title("Jobs")
