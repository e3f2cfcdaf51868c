import streamlit as st

st.title("Generate")
